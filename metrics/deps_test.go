package metrics_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// goDeps lists the packages pkg links (go list -deps: its imports, theirs
// and so on, the module's internal packages included, tests excluded).
func goDeps(t *testing.T, pkg string) []string {
	t.Helper()
	// go test puts its own GOROOT/bin first in the test's PATH.
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool to list the dependencies with: %v", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", pkg).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, ee.Stderr)
		}
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

// TestMetricsNotLinkedByRoot checks that a program that mounts views links
// the Prometheus client only when it imports this package.
func TestMetricsNotLinkedByRoot(t *testing.T) {
	root := goDeps(t, "github.com/sievefs/sievefs")
	// The list must hold the root and the internal packages it imports,
	// or it proves nothing.
	for _, want := range []string{"github.com/sievefs/sievefs", "github.com/sievefs/sievefs/internal/lower"} {
		if !slices.Contains(root, want) {
			t.Fatalf("go list -deps of the root lacks %s: %v", want, root)
		}
	}
	for _, p := range root {
		if strings.Contains(p, "prometheus") {
			t.Errorf("the root package links %s", p)
		}
	}
	if !slices.Contains(goDeps(t, "github.com/sievefs/sievefs/metrics"), "github.com/prometheus/client_golang/prometheus") {
		t.Error("the metrics package does not link the Prometheus client: the check above sees nothing")
	}
}
