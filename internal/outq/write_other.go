//go:build !linux

package outq

import "syscall"

// sysWrite is write(2) on a non-blocking socket.
func sysWrite(fd int, b []byte) (int, error) { return syscall.Write(fd, b) }
