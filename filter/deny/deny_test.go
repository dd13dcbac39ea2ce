package deny

import (
	"slices"
	"syscall"
	"testing"

	"github.com/sievefs/sievefs/filter"
)

func newFilter(t *testing.T, ops []filter.Op, errno syscall.Errno, globs ...string) *Filter {
	t.Helper()
	ps, err := filter.ParsePatterns(globs)
	if err != nil {
		t.Fatal(err)
	}
	return New(ops, ps, errno)
}

const (
	dir  = syscall.S_IFDIR
	file = syscall.S_IFREG
)

func TestAccessors(t *testing.T) {
	f := newFilter(t, []filter.Op{filter.OpUnlink, filter.OpOpen, filter.OpRename}, 0, "logs/**")
	if f.Kind() != "deny" {
		t.Errorf("Kind() = %q", f.Kind())
	}
	if f.Errno() != syscall.EACCES {
		t.Errorf("default Errno() = %v, want EACCES", f.Errno())
	}
	if got, want := f.Ops(), []filter.Op{filter.OpUnlink, filter.OpRename, filter.OpOpen}; !slices.Equal(got, want) {
		t.Errorf("Ops() = %v, want %v (in operation order)", got, want)
	}
	if got := f.Paths().Strings(); !slices.Equal(got, []string{"logs/**"}) {
		t.Errorf("Paths() = %q", got)
	}
	if !f.Covers("logs/a") || f.Covers("logsx") {
		t.Error("Covers wrong")
	}
	if g := newFilter(t, nil, syscall.EPERM, "x"); g.Errno() != syscall.EPERM || len(g.Ops()) != 0 {
		t.Errorf("Errno() = %v, Ops() = %v", g.Errno(), g.Ops())
	}
}

func TestPre(t *testing.T) {
	f := newFilter(t, []filter.Op{filter.OpUnlink, filter.OpRmdir, filter.OpRename, filter.OpLink, filter.OpSetxattr}, syscall.EPERM, "logs/**", "**/keep", "a/b/c")
	for _, tc := range []struct {
		name string
		r    filter.Request
		want error
	}{
		{"unlink denied", filter.Request{Op: filter.OpUnlink, Path: "logs/x"}, syscall.EPERM},
		{"unlink by name", filter.Request{Op: filter.OpUnlink, Path: "d/keep"}, syscall.EPERM},
		{"rmdir denied dir", filter.Request{Op: filter.OpRmdir, Path: "logs", Type: dir}, syscall.EPERM},
		{"setxattr", filter.Request{Op: filter.OpSetxattr, Path: "a/b/c"}, syscall.EPERM},
		{"unlink elsewhere", filter.Request{Op: filter.OpUnlink, Path: "tmp/x"}, nil},
		{"unlink a/b", filter.Request{Op: filter.OpUnlink, Path: "a/b"}, nil},
		// Operations not listed pass.
		{"open", filter.Request{Op: filter.OpOpen, Path: "logs/x", Flags: syscall.O_RDWR | syscall.O_TRUNC}, nil},
		{"create", filter.Request{Op: filter.OpCreate, Path: "logs/new"}, nil},
		{"setattr", filter.Request{Op: filter.OpSetattr, Path: "logs/x", SetAttr: filter.SetAttr{Size: true}}, nil},
		{"removexattr", filter.Request{Op: filter.OpRemovexattr, Path: "a/b/c"}, nil},
		// Rename and link: the source or the destination.
		{"rename from", filter.Request{Op: filter.OpRename, Path: "logs/x", NewPath: "logs/y", Type: file}, syscall.EPERM},
		{"rename onto", filter.Request{Op: filter.OpRename, Path: "x", NewPath: "logs/x", Type: file}, syscall.EPERM},
		{"rename onto by name", filter.Request{Op: filter.OpRename, Path: "x", NewPath: "d/keep", Type: file}, syscall.EPERM},
		{"link from", filter.Request{Op: filter.OpLink, Path: "logs/x", NewPath: "logs/y", Type: file}, syscall.EPERM},
		{"link onto", filter.Request{Op: filter.OpLink, Path: "x", NewPath: "logs/y", Type: file}, syscall.EPERM},
		{"rename elsewhere", filter.Request{Op: filter.OpRename, Path: "x", NewPath: "y", Type: file}, nil},
		{"rename dir with keep inside", filter.Request{Op: filter.OpRename, Path: "p", NewPath: "q", Type: dir}, nil},
	} {
		r := tc.r
		if got := f.Pre(&r); got != tc.want {
			t.Errorf("%s: Pre(%s %q → %q) = %v, want %v", tc.name, r.Op, r.Path, r.NewPath, got, tc.want)
		}
	}
}

// TestRenameOutOfReach checks that what the denial governs cannot be moved
// out of the patterns' reach, even when rename itself is not denied.
func TestRenameOutOfReach(t *testing.T) {
	f := newFilter(t, []filter.Op{filter.OpUnlink}, 0, "logs/**", "a/b/c", "**/keep")
	for _, tc := range []struct {
		name     string
		from, to string
		typ      uint32
		want     error
	}{
		{"file out", "logs/x", "x", file, syscall.EXDEV},
		{"dir out", "logs/d", "d", dir, syscall.EXDEV},
		{"the root of the pattern out", "logs", "old-logs", dir, syscall.EXDEV},
		{"ancestor of a denied file", "a", "z", dir, syscall.EXDEV},
		{"parent of a denied file", "a/b", "a/z", dir, syscall.EXDEV},
		{"a by-name file out of its name", "d/keep", "d/kept", file, syscall.EXDEV},
		{"within", "logs/x", "logs/y/x", file, nil},
		{"into", "x", "logs/x", file, nil},
		{"dir into", "d", "logs/d", dir, nil},
		{"by-name dir moved", "p/q", "r", dir, nil},
		{"unrelated", "x", "y", dir, nil},
	} {
		r := filter.Request{Op: filter.OpRename, Path: tc.from, NewPath: tc.to, Type: tc.typ}
		if got := f.Pre(&r); got != tc.want {
			t.Errorf("%s: rename %q → %q = %v, want %v", tc.name, tc.from, tc.to, got, tc.want)
		}
	}
}

// TestLinkOutOfReach: a hard link gives the node of a denied path a second
// name outside the patterns, through which the denied operations then work
// (deny open of secret.txt; ln secret.txt x; cat x). Renaming the file there
// is refused (EXDEV, TestRenameOutOfReach); linking it there must be too,
// as hide (ENOENT) and readonly (EROFS) refuse links from their paths.
func TestLinkOutOfReach(t *testing.T) {
	f := newFilter(t, []filter.Op{filter.OpOpen}, 0, "secret.txt", "**/*.key")
	for _, tc := range []struct{ from, to string }{
		{"secret.txt", "x"},
		{"d/a.key", "d/a.txt"},
	} {
		r := filter.Request{Op: filter.OpLink, Path: tc.from, NewPath: tc.to, Type: file}
		if err := f.Pre(&r); err == nil {
			t.Errorf("link %q → %q allowed: the denied open then works through %q", tc.from, tc.to, tc.to)
		}
	}
	// Within the patterns a link is harmless.
	r := filter.Request{Op: filter.OpLink, Path: "d/a.key", NewPath: "e/b.key", Type: file}
	if err := f.Pre(&r); err != nil {
		t.Errorf("link within the patterns: %v", err)
	}
}

// TestEveryListedOp checks each operation alone.
func TestEveryListedOp(t *testing.T) {
	for o := range filter.NumOps {
		if !o.Filtered() {
			continue
		}
		f := newFilter(t, []filter.Op{o}, syscall.ENOTSUP, "p/**")
		r := filter.Request{Op: o, Path: "p/x", NewPath: "p/y", Type: file}
		if got := f.Pre(&r); got != syscall.ENOTSUP {
			t.Errorf("%s denied: Pre = %v", o, got)
		}
		r = filter.Request{Op: o, Path: "q/x", NewPath: "q/y", Type: file}
		if got := f.Pre(&r); got != nil {
			t.Errorf("%s elsewhere: Pre = %v", o, got)
		}
	}
}
