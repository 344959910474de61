//go:build !linux

package listen

import "syscall"

// reusePortControl is nil off Linux: ReusePort is refused there.
var reusePortControl func(network, address string, c syscall.RawConn) error
