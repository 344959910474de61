//go:build race

package main

// raceEnabled reports whether the tests run with -race: the meteorctl
// binary they run is then built with -race too.
const raceEnabled = true
