//go:build !linux

package main

import "syscall"

// bindNoPort is nil outside Linux, which has no IP_BIND_ADDRESS_NO_PORT:
// bind(addr:0) then picks the port at once, so each source address has the
// ephemeral range once for all server addresses rather than per server
// address.
var bindNoPort func(network, address string, c syscall.RawConn) error
