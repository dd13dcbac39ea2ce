package readonly

import (
	"syscall"
	"testing"

	"github.com/sievefs/sievefs/filter"
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
	f := newFilter(t, "etc/**", "**/*.lock", "a/b/c")
	if f.Kind() != "readonly" {
		t.Errorf("Kind() = %q", f.Kind())
	}
	for _, tc := range []struct {
		name string
		r    filter.Request
		want error
	}{
		// Opens by their flags.
		{"open O_RDONLY", filter.Request{Op: filter.OpOpen, Path: "etc/passwd", Type: file, Flags: syscall.O_RDONLY}, nil},
		{"open O_RDONLY|O_NOATIME", filter.Request{Op: filter.OpOpen, Path: "etc/passwd", Type: file, Flags: syscall.O_RDONLY | syscall.O_NOATIME}, nil},
		{"open O_WRONLY", filter.Request{Op: filter.OpOpen, Path: "etc/passwd", Type: file, Flags: syscall.O_WRONLY}, syscall.EROFS},
		{"open O_RDWR", filter.Request{Op: filter.OpOpen, Path: "etc/passwd", Type: file, Flags: syscall.O_RDWR}, syscall.EROFS},
		{"open O_RDONLY|O_TRUNC", filter.Request{Op: filter.OpOpen, Path: "etc/passwd", Type: file, Flags: syscall.O_RDONLY | syscall.O_TRUNC}, syscall.EROFS},
		{"open O_WRONLY|O_APPEND", filter.Request{Op: filter.OpOpen, Path: "x/y.lock", Type: file, Flags: syscall.O_WRONLY | syscall.O_APPEND}, syscall.EROFS},
		{"open writable elsewhere", filter.Request{Op: filter.OpOpen, Path: "home/x", Type: file, Flags: syscall.O_RDWR}, nil},
		// Other reads.
		{"lookup", filter.Request{Op: filter.OpLookup, Path: "etc/passwd"}, nil},
		{"getattr", filter.Request{Op: filter.OpGetattr, Path: "etc"}, nil},
		{"getxattr", filter.Request{Op: filter.OpGetxattr, Path: "etc", Xattr: "user.x"}, nil},
		{"listxattr", filter.Request{Op: filter.OpListxattr, Path: "etc"}, nil},
		{"readlink", filter.Request{Op: filter.OpReadlink, Path: "etc/l"}, nil},
		{"opendir", filter.Request{Op: filter.OpOpendir, Path: "etc", Type: dir}, nil},
		{"access", filter.Request{Op: filter.OpAccess, Path: "etc/passwd"}, nil},
		// Attribute and xattr changes.
		{"setattr chmod", filter.Request{Op: filter.OpSetattr, Path: "etc/passwd", Mode: 0o777, SetAttr: filter.SetAttr{Mode: true}}, syscall.EROFS},
		{"setattr truncate", filter.Request{Op: filter.OpSetattr, Path: "etc/passwd", SetAttr: filter.SetAttr{Size: true}}, syscall.EROFS},
		{"setattr times", filter.Request{Op: filter.OpSetattr, Path: "a/b/c", SetAttr: filter.SetAttr{Atime: true, Mtime: true}}, syscall.EROFS},
		{"setattr on the dir itself", filter.Request{Op: filter.OpSetattr, Path: "etc", Type: dir, SetAttr: filter.SetAttr{Uid: true}}, syscall.EROFS},
		{"setxattr", filter.Request{Op: filter.OpSetxattr, Path: "etc/passwd", Xattr: "user.x"}, syscall.EROFS},
		{"removexattr", filter.Request{Op: filter.OpRemovexattr, Path: "etc/passwd", Xattr: "user.x"}, syscall.EROFS},
		{"setattr elsewhere", filter.Request{Op: filter.OpSetattr, Path: "etcx", SetAttr: filter.SetAttr{Size: true}}, nil},
		// Creation and removal.
		{"create", filter.Request{Op: filter.OpCreate, Path: "etc/new", Type: file, Flags: syscall.O_RDONLY}, syscall.EROFS},
		{"create unmatched", filter.Request{Op: filter.OpCreate, Path: "x/lock", Type: file}, nil},
		{"create dot name", filter.Request{Op: filter.OpCreate, Path: "x/.lock", Type: file}, syscall.EROFS}, // * matches a leading dot
		{"create lock", filter.Request{Op: filter.OpCreate, Path: "x/a.lock", Type: file}, syscall.EROFS},
		{"tmpfile in dir", filter.Request{Op: filter.OpTmpfile, Path: "etc", Type: dir}, syscall.EROFS},
		{"mkdir", filter.Request{Op: filter.OpMkdir, Path: "etc/d", Type: dir}, syscall.EROFS},
		{"mknod", filter.Request{Op: filter.OpMknod, Path: "a/b/c", Type: syscall.S_IFIFO}, syscall.EROFS},
		{"symlink", filter.Request{Op: filter.OpSymlink, Path: "etc/l", Target: "/x"}, syscall.EROFS},
		{"unlink", filter.Request{Op: filter.OpUnlink, Path: "etc/passwd"}, syscall.EROFS},
		{"rmdir", filter.Request{Op: filter.OpRmdir, Path: "etc", Type: dir}, syscall.EROFS},
		{"create in the parent of a ro file", filter.Request{Op: filter.OpCreate, Path: "a/b/d", Type: file}, nil},
		// Links.
		{"link from", filter.Request{Op: filter.OpLink, Path: "etc/passwd", NewPath: "mine", Type: file}, syscall.EROFS},
		{"link onto", filter.Request{Op: filter.OpLink, Path: "mine", NewPath: "etc/passwd2", Type: file}, syscall.EROFS},
		{"link elsewhere", filter.Request{Op: filter.OpLink, Path: "mine", NewPath: "mine2", Type: file}, nil},
		// Renames.
		{"rename out", filter.Request{Op: filter.OpRename, Path: "etc/passwd", NewPath: "passwd", Type: file}, syscall.EROFS},
		{"rename within", filter.Request{Op: filter.OpRename, Path: "etc/a", NewPath: "etc/b", Type: file}, syscall.EROFS},
		{"rename onto", filter.Request{Op: filter.OpRename, Path: "mine", NewPath: "etc/passwd", Type: file}, syscall.EROFS},
		{"rename onto by name", filter.Request{Op: filter.OpRename, Path: "mine", NewPath: "d/x.lock", Type: file}, syscall.EROFS},
		{"rename dir onto", filter.Request{Op: filter.OpRename, Path: "d", NewPath: "etc", Type: dir}, syscall.EROFS},
		{"rename dir holding a ro file out", filter.Request{Op: filter.OpRename, Path: "a/b", NewPath: "z", Type: dir}, syscall.EXDEV},
		{"rename ancestor out", filter.Request{Op: filter.OpRename, Path: "a", NewPath: "z", Type: dir}, syscall.EXDEV},
		{"rename dir holding locks", filter.Request{Op: filter.OpRename, Path: "proj", NewPath: "p2", Type: dir}, nil},
		{"rename elsewhere", filter.Request{Op: filter.OpRename, Path: "x", NewPath: "y", Type: file}, nil},
		{"rename a file named like the parent", filter.Request{Op: filter.OpRename, Path: "a/b", NewPath: "z", Type: file}, nil},
	} {
		r := tc.r
		if got := f.Pre(&r); got != tc.want {
			t.Errorf("%s: Pre(%s %q → %q flags %#o) = %v, want %v", tc.name, r.Op, r.Path, r.NewPath, r.Flags, got, tc.want)
		}
	}
}

// TestPreEveryModifyingOp checks that every operation that can change the
// tree is refused on a read-only path, and nothing else.
func TestPreEveryOp(t *testing.T) {
	f := newFilter(t, "ro/**")
	for o := range filter.NumOps {
		if !o.Filtered() {
			continue
		}
		r := filter.Request{Op: o, Path: "ro/x", NewPath: "ro/y", Type: file}
		want := error(nil)
		if r.Modifies() {
			want = syscall.EROFS
		}
		if got := f.Pre(&r); got != want {
			t.Errorf("%s: %v, want %v", o, got, want)
		}
	}
}

func TestCovers(t *testing.T) {
	f := newFilter(t, "etc/**")
	if !f.Covers("etc") || !f.Covers("etc/x") || f.Covers("etcx") {
		t.Error("Covers wrong")
	}
	if got := f.Paths().Strings(); len(got) != 1 || got[0] != "etc/**" {
		t.Errorf("Paths() = %q", got)
	}
}

// TestRenameDirInto: renaming a directory onto a name under which the
// patterns match makes read-only paths out of what it holds. With
// "conf/app.ini" read-only and no conf directory yet, creating conf/app.ini
// is refused (EROFS), but mkdir x; write x/app.ini; mv x conf makes the
// same file, with the writer's content, at the read-only path: a rename
// into read-only paths, which the filter says it refuses. EXDEV (as for
// renames out) would make mv(1) fall back to mkdir and copy, which the
// filter then refuses file by file.
func TestRenameDirInto(t *testing.T) {
	f := newFilter(t, "conf/app.ini", "a/b/**")
	for _, tc := range []struct{ from, to string }{
		{"x", "conf"},
		{"x", "a"}, // x/b/... becomes a/b/...
	} {
		r := filter.Request{Op: filter.OpRename, Path: tc.from, NewPath: tc.to, Type: dir}
		if err := f.Pre(&r); err == nil {
			t.Errorf("rename of directory %q onto %q allowed: what it holds lands on read-only paths", tc.from, tc.to)
		}
	}
	// A file moved there, or a directory moved where nothing below matches,
	// is fine.
	for _, r := range []filter.Request{
		{Op: filter.OpRename, Path: "x", NewPath: "conf", Type: file},
		{Op: filter.OpRename, Path: "x", NewPath: "conf/other", Type: dir},
		{Op: filter.OpRename, Path: "x", NewPath: "y", Type: dir},
	} {
		if err := f.Pre(&r); err != nil {
			t.Errorf("rename %q → %q: %v", r.Path, r.NewPath, err)
		}
	}
}
