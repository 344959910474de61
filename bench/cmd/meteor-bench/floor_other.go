//go:build !linux

package main

import (
	"context"
	"errors"
	"io"
)

// runFloor refuses: the floor server (floor.go) is built on Linux system
// calls (accept4, the thread CPU clock, sched_setaffinity).
func runFloor(context.Context, []string, io.Reader, io.Writer, io.Writer) error {
	return errors.New("floor-server runs only on Linux")
}
