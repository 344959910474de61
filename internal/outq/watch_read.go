package outq

import (
	"io"
	"net"
	"sync"
)

// watchByReading watches nc with a goroutine that discards its input and
// calls fn when the input ends. The goroutine ends when nc is closed.
func watchByReading(nc net.Conn, fn func()) (stop func()) {
	done := make(chan struct{})
	go func() {
		io.Copy(io.Discard, nc)
		select {
		case <-done:
		default:
			fn()
		}
	}()
	return sync.OnceFunc(func() { close(done) })
}
