//go:build linux

package main

import "syscall"

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT from <linux/in.h>, which
// the syscall package does not name. With it, bind(addr:0) leaves the port
// to connect, which picks it per destination: each source address then has
// the whole ephemeral range for every server address.
const ipBindAddressNoPort = 24

// bindNoPort is the Control of a dialer with a source address: it sets
// IP_BIND_ADDRESS_NO_PORT on the socket before its bind.
func bindNoPort(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	})
	if err != nil {
		return err
	}
	return serr
}
