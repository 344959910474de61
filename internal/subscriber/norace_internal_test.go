//go:build !race

package subscriber

const raceOn = false
