package hide

import (
	"syscall"
	"testing"

	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/internal/chain"
)

func newFilter(t *testing.T, globs ...string) *Filter {
	t.Helper()
	ps, err := filter.ParsePatterns(globs)
	if err != nil {
		t.Fatal(err)
	}
	return New(ps)
}

const (
	dir  = syscall.S_IFDIR
	file = syscall.S_IFREG
)

func TestPre(t *testing.T) {
	f := newFilter(t, "secrets/**", "**/.env", "a/b/hidden")
	if f.Kind() != "hide" {
		t.Errorf("Kind() = %q", f.Kind())
	}
	for _, tc := range []struct {
		name string
		r    filter.Request
		want error
	}{
		// Operations on hidden nodes: as if absent.
		{"lookup hidden dir", filter.Request{Op: filter.OpLookup, Path: "secrets"}, syscall.ENOENT},
		{"lookup beneath", filter.Request{Op: filter.OpLookup, Path: "secrets/key"}, syscall.ENOENT},
		{"lookup by name", filter.Request{Op: filter.OpLookup, Path: "x/y/.env"}, syscall.ENOENT},
		{"getattr", filter.Request{Op: filter.OpGetattr, Path: "secrets/key", Type: file}, syscall.ENOENT},
		{"open read-only", filter.Request{Op: filter.OpOpen, Path: ".env", Flags: syscall.O_RDONLY}, syscall.ENOENT},
		{"opendir", filter.Request{Op: filter.OpOpendir, Path: "secrets", Type: dir}, syscall.ENOENT},
		{"setattr", filter.Request{Op: filter.OpSetattr, Path: "a/b/hidden"}, syscall.ENOENT},
		{"getxattr", filter.Request{Op: filter.OpGetxattr, Path: "a/b/hidden"}, syscall.ENOENT},
		{"listxattr", filter.Request{Op: filter.OpListxattr, Path: "secrets"}, syscall.ENOENT},
		{"setxattr", filter.Request{Op: filter.OpSetxattr, Path: "secrets"}, syscall.ENOENT},
		{"removexattr", filter.Request{Op: filter.OpRemovexattr, Path: "secrets"}, syscall.ENOENT},
		{"readlink", filter.Request{Op: filter.OpReadlink, Path: "secrets/l"}, syscall.ENOENT},
		{"access", filter.Request{Op: filter.OpAccess, Path: "secrets"}, syscall.ENOENT},
		{"statfs", filter.Request{Op: filter.OpStatfs, Path: "secrets"}, syscall.ENOENT},
		{"unlink", filter.Request{Op: filter.OpUnlink, Path: "secrets/key"}, syscall.ENOENT},
		{"rmdir", filter.Request{Op: filter.OpRmdir, Path: "secrets", Type: dir}, syscall.ENOENT},
		{"tmpfile in hidden dir", filter.Request{Op: filter.OpTmpfile, Path: "secrets", Type: dir}, syscall.ENOENT},
		// Making a hidden name: refused whether or not it exists below.
		{"create", filter.Request{Op: filter.OpCreate, Path: "x/.env", Type: file, Flags: syscall.O_WRONLY | syscall.O_CREAT}, syscall.EACCES},
		{"create beneath", filter.Request{Op: filter.OpCreate, Path: "secrets/new", Type: file}, syscall.EACCES},
		{"mkdir", filter.Request{Op: filter.OpMkdir, Path: "secrets", Type: dir}, syscall.EACCES},
		{"mknod", filter.Request{Op: filter.OpMknod, Path: "a/b/hidden", Type: syscall.S_IFIFO}, syscall.EACCES},
		{"symlink", filter.Request{Op: filter.OpSymlink, Path: ".env", Target: "elsewhere"}, syscall.EACCES},
		{"link onto", filter.Request{Op: filter.OpLink, Path: "visible", NewPath: "dir/.env", Type: file}, syscall.EACCES},
		// Linking from a hidden node: it does not exist.
		{"link from", filter.Request{Op: filter.OpLink, Path: "secrets/key", NewPath: "copy", Type: file}, syscall.ENOENT},
		// Renames.
		{"rename hidden source", filter.Request{Op: filter.OpRename, Path: "secrets/key", NewPath: "key", Type: file}, syscall.ENOENT},
		{"rename hidden dir", filter.Request{Op: filter.OpRename, Path: "secrets", NewPath: "open", Type: dir}, syscall.ENOENT},
		{"rename onto hidden", filter.Request{Op: filter.OpRename, Path: "key", NewPath: "secrets/key", Type: file}, syscall.EACCES},
		{"rename onto by name", filter.Request{Op: filter.OpRename, Path: "env.txt", NewPath: "d/.env", Type: file}, syscall.EACCES},
		{"rename dir onto hidden", filter.Request{Op: filter.OpRename, Path: "d", NewPath: "secrets", Type: dir}, syscall.EACCES},
		{"rename parent of hidden out", filter.Request{Op: filter.OpRename, Path: "a/b", NewPath: "c", Type: dir}, syscall.EXDEV},
		{"rename grandparent of hidden out", filter.Request{Op: filter.OpRename, Path: "a", NewPath: "z", Type: dir}, syscall.EXDEV},
		// Allowed.
		{"lookup visible", filter.Request{Op: filter.OpLookup, Path: "secretsx"}, nil},
		{"lookup .envx", filter.Request{Op: filter.OpLookup, Path: "a/.envx"}, nil},
		{"lookup root", filter.Request{Op: filter.OpGetattr, Path: ""}, nil},
		{"create visible", filter.Request{Op: filter.OpCreate, Path: "a/b/visible", Type: file}, nil},
		{"rename visible", filter.Request{Op: filter.OpRename, Path: "a/x", NewPath: "y", Type: file}, nil},
		{"rename file named like the parent", filter.Request{Op: filter.OpRename, Path: "a/b", NewPath: "c", Type: file}, nil},
		{"rename dir with .env inside", filter.Request{Op: filter.OpRename, Path: "proj", NewPath: "other/proj", Type: dir}, nil},
		{"rename dir into hidden parent's sibling", filter.Request{Op: filter.OpRename, Path: "x", NewPath: "a/b/x", Type: dir}, nil},
		{"link visible", filter.Request{Op: filter.OpLink, Path: "a", NewPath: "b", Type: file}, nil},
		{"unlink visible", filter.Request{Op: filter.OpUnlink, Path: "a/.envrc"}, nil},
	} {
		r := tc.r
		if got := f.Pre(&r); got != tc.want {
			t.Errorf("%s: Pre(%s %q → %q) = %v, want %v", tc.name, r.Op, r.Path, r.NewPath, got, tc.want)
		}
	}
}

// TestPreEveryOp checks that no filtered operation on a hidden node gets
// through.
func TestPreEveryOp(t *testing.T) {
	f := newFilter(t, "h/**")
	for o := range filter.NumOps {
		if !o.Filtered() {
			continue
		}
		r := filter.Request{Op: o, Path: "h/x", NewPath: "v", Type: file}
		if err := f.Pre(&r); err != syscall.ENOENT && err != syscall.EACCES {
			t.Errorf("%s on a hidden node: %v", o, err)
		}
	}
}

func TestKeep(t *testing.T) {
	f := newFilter(t, "secrets/**", "**/.env")
	for _, tc := range []struct {
		path string
		keep bool
	}{
		{"secrets", false},
		{"secrets/a", false},
		{".env", false},
		{"a/b/.env", false},
		{"secretsx", true},
		{"a/.envrc", true},
		{"a/b", true},
	} {
		e := filter.DirEntry{Name: tc.path, Path: tc.path}
		if got := f.Keep(&filter.Request{Op: filter.OpReaddir}, &e); got != tc.keep {
			t.Errorf("Keep(%q) = %v, want %v", tc.path, got, tc.keep)
		}
	}
}

func TestCovers(t *testing.T) {
	f := newFilter(t, "secrets/**")
	if !f.Covers("secrets/a") || f.Covers("public") || f.Covers("") {
		t.Error("Covers wrong")
	}
	if got := f.Paths().Strings(); len(got) != 1 || got[0] != "secrets/**" {
		t.Errorf("Paths() = %q", got)
	}
}

// TestInChain checks the filter as the chain runs it: a condition limits
// it to some callers, and then its answers depend on the caller.
func TestInChain(t *testing.T) {
	f := newFilter(t, "secrets/**")
	c, err := chain.New(filter.Rule{Filter: f, When: filter.Condition{Unless: &filter.Callers{Uids: []uint32{0}}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Pre(&filter.Request{Op: filter.OpLookup, Path: "secrets/k", Caller: filter.Caller{Uid: 1000}}); err != syscall.ENOENT {
		t.Errorf("user lookup: %v", err)
	}
	if err := c.Pre(&filter.Request{Op: filter.OpLookup, Path: "secrets/k", Caller: filter.Caller{Uid: 0}}); err != nil {
		t.Errorf("root lookup: %v", err)
	}
	if !c.DependsOnCaller("secrets/k") || c.DependsOnCaller("public/k") {
		t.Error("DependsOnCaller wrong")
	}
	if c.Keep(&filter.Request{Caller: filter.Caller{Uid: 1000}}, &filter.DirEntry{Path: "secrets"}) {
		t.Error("hidden entry listed")
	}
}
