package sievefs_test

import (
	"testing"

	"github.com/sievefs/sievefs/internal/fusetest"
)

// TestMain lets fusetest run a helper process (the "exec", "mmap" and
// "mwrite" helpers of this package) and removes the sievefs binary built
// for the tests.
func TestMain(m *testing.M) { fusetest.Main(m) }
