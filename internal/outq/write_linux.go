package outq

import (
	"syscall"
	"unsafe"
)

// sysWrite is write(2) on a non-blocking socket, made without telling the
// Go scheduler that the thread enters a system call (RawSyscall). Such a
// write never waits, but on loopback it runs the receiver's TCP processing
// too and takes ~10 µs: long enough that, announced as a system call, the
// runtime hands the thread's P to another thread and takes it back after
// many of them, which cost about 10 % of a broadcast's time
// (BENCHMARKS.md, "floor"). Only for descriptors in non-blocking mode.
func sysWrite(fd int, b []byte) (int, error) {
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(p), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
