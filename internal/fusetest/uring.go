package fusetest

import (
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/sievefs/sievefs/internal/fuseconn"
)

// uringParam counts the tests that need enable_uring on, so that the last
// one to end puts back the value the first one found.
var uringParam struct {
	sync.Mutex
	users    int
	original string
}

// RequireURing skips the test unless the kernel can carry FUSE over
// io_uring. It turns the fuse module's enable_uring parameter on for the
// length of the test if it is off, and puts it back when the last test
// that needed it ends.
func RequireURing(t testing.TB) {
	t.Helper()
	RequireFuse(t)
	uringParam.Lock()
	defer uringParam.Unlock()
	if uringParam.users == 0 {
		b, err := os.ReadFile(fuseconn.EnableURingParam)
		if err != nil {
			t.Skipf("kernel without FUSE over io_uring (Linux 6.14+, CONFIG_FUSE_IO_URING): %v", err)
		}
		original := strings.TrimSpace(string(b))
		if original != "Y" {
			if err := os.WriteFile(fuseconn.EnableURingParam, []byte("Y"), 0); err != nil {
				t.Skipf("cannot turn FUSE over io_uring on: %v", err)
			}
		}
		uringParam.original = original
	}
	uringParam.users++
	t.Cleanup(func() {
		uringParam.Lock()
		defer uringParam.Unlock()
		uringParam.users--
		if uringParam.users == 0 && uringParam.original != "Y" {
			if err := os.WriteFile(fuseconn.EnableURingParam, []byte(uringParam.original), 0); err != nil {
				t.Errorf("put back %s: %v", fuseconn.EnableURingParam, err)
			}
		}
	})
}
