//go:build !linux

package outq

import "syscall"

// Watcher reports peers that hang up. Outside Linux each watched connection
// gets a goroutine that reads and discards its input, and stays in Go's
// network poller.
type Watcher struct{}

// NewWatcher returns a Watcher.
func NewWatcher() (*Watcher, error) { return &Watcher{}, nil }

// Close does nothing.
func (w *Watcher) Close() error { return nil }

// detach never takes a descriptor out of Go's poller here.
func detach(syscall.RawConn) (int, bool) { return -1, false }

func (w *Watcher) add(*Conn) error           { return syscall.EINVAL }
func (w *Watcher) arm(*Conn) error           { return syscall.EINVAL }
func (w *Watcher) remove(*Conn)              {}
func writev(int, [][]byte, int) (int, error) { return 0, syscall.EINVAL }
