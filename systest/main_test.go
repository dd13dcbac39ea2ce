package systest

import (
	"testing"

	"github.com/sievefs/sievefs/internal/fusetest"
)

// TestMain lets fusetest run a helper process (Beside, RunAs, the "hold"
// helper of attack_fds_test.go) and removes the sievefs binary built for
// the tests.
func TestMain(m *testing.M) { fusetest.Main(m) }
