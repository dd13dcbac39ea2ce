package lower

import (
	"os"
	"path/filepath"
	"testing"
)

func TestIsDirBeneath(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	for _, d := range []string{"a/b", "c"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "a", "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"link": "a", "a/up": "../c", "out": outside} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		rel  string
		want bool
	}{
		{"a", true},
		{"a/b", true},
		{"c", true},
		{"a/f", false}, // a file
		{"missing", false},
		{"link", false},   // a symlink to a directory
		{"link/b", false}, // through one
		{"a/up", false},
		{"out", false},
		{"../" + filepath.Base(outside), false},
	} {
		if got := IsDirBeneath(root, c.rel); got != c.want {
			t.Errorf("IsDirBeneath(%q) = %v, want %v", c.rel, got, c.want)
		}
	}
	if IsDirBeneath(filepath.Join(root, "missing"), "a") {
		t.Error("IsDirBeneath of a missing root")
	}
}
