//go:build race

package subscriber_test

// raceEnabled: the race detector's goroutines need larger stacks.
const raceEnabled = true
