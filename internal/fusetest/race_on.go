//go:build race

package fusetest

// RaceEnabled reports whether the tests run with the race detector.
const RaceEnabled = true
