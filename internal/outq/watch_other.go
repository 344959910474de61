//go:build !linux

package outq

import (
	"net"
	"syscall"
)

// Watcher reports peers that hang up. Outside Linux each watched connection
// gets a goroutine that reads and discards its input.
type Watcher struct{}

// NewWatcher returns a Watcher.
func NewWatcher() (*Watcher, error) { return &Watcher{}, nil }

// Watch calls fn once when the peer of nc hangs up.
func (w *Watcher) Watch(nc net.Conn, _ syscall.RawConn, fn func()) (stop func()) {
	return watchByReading(nc, fn)
}

// Close does nothing.
func (w *Watcher) Close() error { return nil }
