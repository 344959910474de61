// Package listen opens the server's sockets: its TCP listeners and its UDP
// socket, with SO_REUSEPORT when the configuration asks for it (ReusePort
// 1: several meteord processes on one box share the ports, and the kernel
// spreads new connections over them), and derives the cap on subscriber
// connections from the open-files limit (MaxConnections 0).
package listen

import (
	"context"
	"errors"
	"math"
	"net"
	"syscall"
)

// ErrReusePortUnsupported reports ReusePort on a system where this server
// does not set SO_REUSEPORT: its meaning (the kernel balancing new
// connections over the group) is Linux's; the BSDs' differs.
var ErrReusePortUnsupported = errors.New("listen: ReusePort is supported on Linux only")

// TCP listens on addr. With reusePort the socket joins the SO_REUSEPORT
// group of addr: every socket of a group sets the option before its bind,
// and all belong to processes of one effective user id.
func TCP(ctx context.Context, addr string, reusePort bool) (net.Listener, error) {
	lc, err := listenConfig(reusePort)
	if err != nil {
		return nil, err
	}
	return lc.Listen(ctx, "tcp", addr)
}

// UDP opens a UDP socket on addr, in the SO_REUSEPORT group of addr when
// reusePort is set (datagrams are then spread over the group by their
// source address and port).
func UDP(ctx context.Context, addr string, reusePort bool) (net.PacketConn, error) {
	lc, err := listenConfig(reusePort)
	if err != nil {
		return nil, err
	}
	return lc.ListenPacket(ctx, "udp", addr)
}

// listenConfig returns the net.ListenConfig of a socket with or without
// SO_REUSEPORT.
func listenConfig(reusePort bool) (net.ListenConfig, error) {
	if !reusePort {
		return net.ListenConfig{}, nil
	}
	if reusePortControl == nil {
		return net.ListenConfig{}, ErrReusePortUnsupported
	}
	return net.ListenConfig{Control: reusePortControl}, nil
}

// Headroom: the open files a process keeps beyond its subscriber
// connections (its listeners, the controller's and the API's connections,
// the Redis pool and pub/sub connections, log and static files).
const (
	minHeadroom     = 256
	headroomPercent = 5
)

// OpenFilesLimit returns this process's soft RLIMIT_NOFILE (Go raises it
// to the hard limit at start, so it is the ceiling), or 0 when it is
// unlimited or cannot be read.
func OpenFilesLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	if uint64(rl.Cur) > math.MaxInt32 {
		return 0 // RLIM_INFINITY, or as good as
	}
	return uint64(rl.Cur)
}

// ConnectionCap returns the subscriber connections that a process with
// limit open files may hold: limit − max(256, 5% of limit), and never less
// than half the limit (a small limit keeps half for the rest). 0 (no cap)
// when limit is 0, unknown or unlimited. 20000 gives 19000, 4096 3840,
// 1024 768.
func ConnectionCap(limit uint64) int {
	if limit == 0 || limit > math.MaxInt32 {
		return 0
	}
	n := int(limit)
	return max(n-max(minHeadroom, n*headroomPercent/100), n/2, 1)
}

// MaxConnections returns the cap in force for the MaxConnections setting:
// the setting itself when it is positive, else ConnectionCap of this
// process's open-files limit (0: no cap).
func MaxConnections(setting int) int {
	if setting > 0 {
		return setting
	}
	return ConnectionCap(OpenFilesLimit())
}
