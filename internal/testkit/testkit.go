// Package testkit holds what the tests of several packages share: a
// configuration on loopback ports that the kernel picks, and a log sink that
// is safe for concurrent use. Only tests import it.
package testkit

import (
	"bytes"
	"log/slog"
	"sync"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/engine/memory"
)

// Config returns the built-in configuration with every listener on
// 127.0.0.1 and a port the kernel picks, no document root on disk (the
// built-in files only), and no pings or heartbeats: tests that want them
// set them.
func Config() *config.Config {
	cfg := config.Defaults()
	cfg.SubscriberIP, cfg.SubscriberPort = "127.0.0.1", 0
	cfg.ControllerIP, cfg.ControllerPort = "127.0.0.1", 0
	cfg.AdminIP, cfg.AdminPort = "127.0.0.1", 0
	cfg.SubscriberDocumentRoot = ""
	cfg.HeartbeatInterval = 0
	cfg.Default.PingInterval = 0
	for _, m := range cfg.Modes {
		m.PingInterval = 0
	}
	return cfg
}

// Log is a log sink safe for concurrent use, for a test to read what the
// server logged.
type Log struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Logger returns a text logger at debug level that writes to l.
func (l *Log) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// DenseIDs makes eng, a memory engine, number each channel's messages 1,
// 2, 3, so that a test can compare ids with literal numbers. Real servers
// draw ids from the clock (engine.NextID); the tests of that, and of ids
// across a restart, leave it alone.
func DenseIDs(eng engine.Engine) {
	eng.(*memory.Engine).SetDenseIDs()
}
