// Command meteord is a real-time push server that keeps Meteor 1.06's
// controller protocol, subscriber URLs, configuration and signals.
//
// It runs in the foreground; see the README for how to run it and
// docs/configuration.md for its settings.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/sdnotify"
	"github.com/meteorpush/meteor/internal/server"
	"github.com/meteorpush/meteor/internal/version"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if url, ok := healthArgs(args); ok {
		return healthcheck(url, stdout, stderr)
	}
	cfg, action, err := config.Load(args, os.ReadFile)
	if err != nil {
		fmt.Fprintf(stderr, "meteord: %v\n", err)
		return 2
	}
	switch action {
	case config.ActionHelp:
		config.Usage(stdout)
		return 0
	case config.ActionVersion:
		fmt.Fprintf(stdout, "meteord %s\n", version.Get())
		return 0
	}
	logger, closeLog, err := newLogger(cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "meteord: %v\n", err)
		return 2
	}
	defer closeLog()

	b := version.Get()
	logger.Info("starting", "version", b.Version, "commit", b.Commit, "date", b.Date, "goversion", b.GoVersion, "pid", os.Getpid())
	logger.Info("garbage collector", "GCPercent", applyGCPercent(cfg))
	srv, err := server.New(cfg, logger)
	if err != nil {
		logger.Error("start-up failed", "err", err)
		return 1
	}
	if err := srv.Start(); err != nil {
		logger.Error("start-up failed", "err", err)
		srv.Shutdown(context.Background())
		return 1
	}
	if cfg.PidFile != "" {
		if err := os.WriteFile(cfg.PidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			logger.Error("writing pid file", "err", err)
		} else {
			defer os.Remove(cfg.PidFile)
		}
	}

	// Under systemd (Type=notify): ready now that every listener is open,
	// and the watchdog's pings until the server has stopped.
	notify, err := sdnotify.FromEnv()
	if err != nil {
		logger.Warn("systemd notification off", "err", err)
	}
	if err := notify.Notify(sdnotify.Ready, "STATUS=listening"); err != nil {
		logger.Warn("systemd notification", "err", err)
	}
	interval, err := sdnotify.WatchdogInterval()
	if err != nil {
		logger.Warn("systemd watchdog off", "err", err)
	}
	watchdog := notify.StartWatchdog(interval, func(err error) { logger.Warn("systemd watchdog", "err", err) })
	defer watchdog.Stop()
	if watchdog != nil {
		logger.Info("systemd watchdog", "interval", interval.String())
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			notifyLog(logger, notify, sdnotify.Reloading)
			next, err := cfg.Reload(os.ReadFile)
			if err == nil {
				err = srv.Reload(next)
			}
			notifyLog(logger, notify, sdnotify.Ready)
			if err != nil {
				logger.Error("reload refused; the running configuration stays", "err", err)
				continue
			}
			if next.GCPercent != cfg.GCPercent {
				logger.Info("garbage collector", "GCPercent", applyGCPercent(next))
			}
			cfg = next
		case syscall.SIGUSR1:
			srv.ClearHistories()
		case syscall.SIGUSR2:
			srv.ClearDocuments()
		case syscall.SIGTERM, syscall.SIGINT:
			bound := shutdownBound(cfg)
			logger.Info("shutting down", "signal", sig.String(), "timeout", int(bound/time.Second), "restart", cfg.ReusePort)
			notifyLog(logger, notify, sdnotify.Stopping)
			ctx, cancel := context.WithTimeout(context.Background(), bound)
			err := srv.Shutdown(ctx)
			cancel()
			watchdog.Stop()
			if err != nil {
				logger.Warn("shutdown incomplete", "err", err)
				return 1
			}
			logger.Info("stopped")
			return 0
		}
	}
	return 0
}

// notifyLog sends state to systemd and logs a failure.
func notifyLog(logger *slog.Logger, n *sdnotify.Notifier, state string) {
	if err := n.Notify(state); err != nil {
		logger.Warn("systemd notification", "state", state, "err", err)
	}
}

// shutdownBound is how long TERM may take: ShutdownTimeout for the last
// flush and, with ReusePort (a drain for a restart), DrainTime before it.
func shutdownBound(cfg *config.Config) time.Duration {
	d := time.Duration(cfg.ShutdownTimeout) * time.Second
	if cfg.ReusePort {
		d += time.Duration(cfg.DrainTime) * time.Second
	}
	return d
}

// startGCPercent is the garbage collector's target that the process
// started with: the GOGC environment variable's, else Go's default, 100.
var startGCPercent = func() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}()

// applyGCPercent sets the garbage collector's target to cfg.GCPercent, or
// back to the one the process started with when it is 0, and returns the
// target in force (-1: collection off, by GOGC=off).
func applyGCPercent(cfg *config.Config) int {
	p := cfg.GCPercent
	if p == 0 {
		p = startGCPercent
	}
	debug.SetGCPercent(p)
	return p
}

// newLogger builds the logger that cfg asks for: stderr (text or JSON) or
// syslog, at the level of LogLevel (debug when Debug is set).
func newLogger(cfg *config.Config, stderr io.Writer) (*slog.Logger, func(), error) {
	opts := &slog.HandlerOptions{Level: cfg.Level()}
	if cfg.LogTimeFormat == "unix" {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Int64(slog.TimeKey, a.Value.Time().Unix())
			}
			return a
		}
	}
	var w io.Writer = stderr
	closeFn := func() {}
	if f := strings.ToLower(cfg.SyslogFacility); f != "" && f != "none" {
		prio, ok := facilities[f]
		if !ok {
			return nil, nil, errors.New("SyslogFacility: unknown facility " + strconv.Quote(cfg.SyslogFacility))
		}
		sw, err := syslog.New(prio|syslog.LOG_INFO, "meteord")
		if err != nil {
			return nil, nil, fmt.Errorf("SyslogFacility %s: %w", f, err)
		}
		// syslog stamps its own time.
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		}
		w, closeFn = sw, func() { sw.Close() }
	}
	var h slog.Handler
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	} else {
		h = slog.NewTextHandler(w, opts)
	}
	return slog.New(h), closeFn, nil
}

var facilities = map[string]syslog.Priority{
	"kern": syslog.LOG_KERN, "user": syslog.LOG_USER, "mail": syslog.LOG_MAIL,
	"daemon": syslog.LOG_DAEMON, "auth": syslog.LOG_AUTH, "syslog": syslog.LOG_SYSLOG,
	"lpr": syslog.LOG_LPR, "news": syslog.LOG_NEWS, "uucp": syslog.LOG_UUCP,
	"cron": syslog.LOG_CRON, "authpriv": syslog.LOG_AUTHPRIV, "ftp": syslog.LOG_FTP,
	"local0": syslog.LOG_LOCAL0, "local1": syslog.LOG_LOCAL1, "local2": syslog.LOG_LOCAL2,
	"local3": syslog.LOG_LOCAL3, "local4": syslog.LOG_LOCAL4, "local5": syslog.LOG_LOCAL5,
	"local6": syslog.LOG_LOCAL6, "local7": syslog.LOG_LOCAL7,
}
