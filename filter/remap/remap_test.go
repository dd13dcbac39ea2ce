package remap

import (
	"reflect"
	"syscall"
	"testing"

	"github.com/sievefs/sievefs/filter"
)

func u32(v uint32) *uint32 { return &v }

func newFilter(t *testing.T, c Config, globs ...string) *Filter {
	t.Helper()
	ps, err := filter.ParsePatterns(globs)
	if err != nil {
		t.Fatal(err)
	}
	c.Paths = ps
	return New(c)
}

const (
	dir  = syscall.S_IFDIR
	file = syscall.S_IFREG
	link = syscall.S_IFLNK
)

func TestAttr(t *testing.T) {
	f := newFilter(t, Config{Uid: u32(1000), Gid: u32(100), FileMode: u32(0o640), DirMode: u32(0o750)}, "home/**")
	if f.Kind() != "remap" {
		t.Errorf("Kind() = %q", f.Kind())
	}
	for _, tc := range []struct {
		name    string
		path    string
		in, out filter.Attr
		changed bool
	}{
		{"file", "home/a", filter.Attr{Ino: 5, Mode: file | 0o4755, Uid: 0, Gid: 0, Size: 9, Nlink: 2},
			filter.Attr{Ino: 5, Mode: file | 0o640, Uid: 1000, Gid: 100, Size: 9, Nlink: 2}, true},
		{"dir", "home", filter.Attr{Mode: dir | 0o700}, filter.Attr{Mode: dir | 0o750, Uid: 1000, Gid: 100}, true},
		{"symlink keeps its mode", "home/l", filter.Attr{Mode: link | 0o777}, filter.Attr{Mode: link | 0o777, Uid: 1000, Gid: 100}, true},
		{"fifo is a file", "home/p", filter.Attr{Mode: syscall.S_IFIFO | 0o600}, filter.Attr{Mode: syscall.S_IFIFO | 0o640, Uid: 1000, Gid: 100}, true},
		{"unmatched", "etc/x", filter.Attr{Mode: file | 0o600, Uid: 3, Gid: 4}, filter.Attr{Mode: file | 0o600, Uid: 3, Gid: 4}, false},
		{"root", "", filter.Attr{Mode: dir | 0o755}, filter.Attr{Mode: dir | 0o755}, false},
	} {
		a := tc.in
		changed := f.Attr(&filter.Request{Op: filter.OpGetattr}, tc.path, &a)
		if a != tc.out || changed != tc.changed {
			t.Errorf("%s: Attr(%q) = %+v, %v; want %+v, %v", tc.name, tc.path, a, changed, tc.out, tc.changed)
		}
	}
}

func TestAttrPartialConfig(t *testing.T) {
	f := newFilter(t, Config{Gid: u32(7)}, "**")
	a := filter.Attr{Mode: file | 0o604, Uid: 3, Gid: 4}
	f.Attr(&filter.Request{}, "x", &a)
	if a != (filter.Attr{Mode: file | 0o604, Uid: 3, Gid: 7}) {
		t.Errorf("Attr = %+v: only the gid should change", a)
	}
	g := newFilter(t, Config{DirMode: u32(0o555)}, "**")
	a = filter.Attr{Mode: file | 0o604, Uid: 3, Gid: 4}
	g.Attr(&filter.Request{}, "x", &a)
	if a.Mode != file|0o604 {
		t.Errorf("a file's mode changed by DirMode: %o", a.Mode)
	}
}

func TestPre(t *testing.T) {
	f := newFilter(t, Config{Uid: u32(1000), Gid: u32(100), FileMode: u32(0o640), DirMode: u32(0o750)}, "home/**")
	for _, tc := range []struct {
		name string
		r    filter.Request
		want error
		left filter.SetAttr // what the lower file still gets
	}{
		{"chmod file to another mode", filter.Request{Type: file, Mode: 0o600, SetAttr: filter.SetAttr{Mode: true}}, syscall.EPERM, filter.SetAttr{}},
		{"chmod file adding setuid", filter.Request{Type: file, Mode: 0o4640, SetAttr: filter.SetAttr{Mode: true}}, syscall.EPERM, filter.SetAttr{}},
		{"chmod file to the presented mode", filter.Request{Type: file, Mode: 0o640, SetAttr: filter.SetAttr{Mode: true}}, nil, filter.SetAttr{}},
		{"chmod dir to the file mode", filter.Request{Type: dir, Mode: 0o640, SetAttr: filter.SetAttr{Mode: true}}, syscall.EPERM, filter.SetAttr{}},
		{"chmod dir to the presented mode", filter.Request{Type: dir, Mode: 0o750, SetAttr: filter.SetAttr{Mode: true}}, nil, filter.SetAttr{}},
		{"chmod symlink passes", filter.Request{Type: link, Mode: 0o600, SetAttr: filter.SetAttr{Mode: true}}, nil, filter.SetAttr{Mode: true}},
		{"chown to another uid", filter.Request{Type: file, SetAttr: filter.SetAttr{Uid: true, UidValue: 0}}, syscall.EPERM, filter.SetAttr{}},
		{"chown to the presented uid", filter.Request{Type: file, SetAttr: filter.SetAttr{Uid: true, UidValue: 1000}}, nil, filter.SetAttr{}},
		{"chgrp to another gid", filter.Request{Type: file, SetAttr: filter.SetAttr{Gid: true, GidValue: 0}}, syscall.EPERM, filter.SetAttr{}},
		{"chgrp to the presented gid", filter.Request{Type: dir, SetAttr: filter.SetAttr{Gid: true, GidValue: 100}}, nil, filter.SetAttr{}},
		{"chown both presented", filter.Request{Type: file, SetAttr: filter.SetAttr{Uid: true, UidValue: 1000, Gid: true, GidValue: 100}}, nil, filter.SetAttr{}},
		{"chown uid presented, gid not", filter.Request{Type: file, SetAttr: filter.SetAttr{Uid: true, UidValue: 1000, Gid: true, GidValue: 5}}, syscall.EPERM, filter.SetAttr{}},
		{"truncate passes", filter.Request{Type: file, SetAttr: filter.SetAttr{Size: true, SizeValue: 3}}, nil, filter.SetAttr{Size: true, SizeValue: 3}},
		{"times pass", filter.Request{Type: file, SetAttr: filter.SetAttr{Atime: true, Mtime: true}}, nil, filter.SetAttr{Atime: true, Mtime: true}},
		{"presented mode with truncate", filter.Request{Type: file, Mode: 0o640, SetAttr: filter.SetAttr{Mode: true, Size: true}}, nil, filter.SetAttr{Size: true}},
	} {
		r := tc.r
		r.Op, r.Path = filter.OpSetattr, "home/x"
		got := f.Pre(&r)
		if got != tc.want {
			t.Errorf("%s: Pre = %v, want %v", tc.name, got, tc.want)
			continue
		}
		if got == nil && changes(r.SetAttr) != changes(tc.left) {
			t.Errorf("%s: SetAttr left %+v, want %+v", tc.name, r.SetAttr, tc.left)
		}
	}
	// Unmatched paths and other operations pass untouched.
	for _, r := range []filter.Request{
		{Op: filter.OpSetattr, Path: "etc/x", Type: file, Mode: 0o777, SetAttr: filter.SetAttr{Mode: true, Uid: true}},
		{Op: filter.OpSetattr, Path: "", Type: dir, Mode: 0o777, SetAttr: filter.SetAttr{Mode: true}},
		{Op: filter.OpCreate, Path: "home/new", Type: file, Mode: 0o777},
		{Op: filter.OpMkdir, Path: "home/d", Type: dir, Mode: 0o777},
		{Op: filter.OpOpen, Path: "home/x", Type: file, Flags: syscall.O_RDWR},
	} {
		before := r
		if err := f.Pre(&r); err != nil || !reflect.DeepEqual(r, before) {
			t.Errorf("%s %q: Pre = %v, request %+v", r.Op, r.Path, err, r)
		}
	}
}

// changes drops the values of what a setattr does not change.
func changes(s filter.SetAttr) filter.SetAttr {
	if !s.Uid {
		s.UidValue = 0
	}
	if !s.Gid {
		s.GidValue = 0
	}
	if !s.Size {
		s.SizeValue = 0
	}
	return s
}

func TestPreUnsetFieldsPass(t *testing.T) {
	f := newFilter(t, Config{Uid: u32(1)}, "**")
	r := filter.Request{Op: filter.OpSetattr, Path: "x", Type: file, Mode: 0o600, SetAttr: filter.SetAttr{Mode: true, Gid: true, GidValue: 9}}
	if err := f.Pre(&r); err != nil || !r.SetAttr.Mode || !r.SetAttr.Gid {
		t.Errorf("Pre = %v, SetAttr %+v: what is not presented must reach the lower file", err, r.SetAttr)
	}
}

func TestCoversAndConfig(t *testing.T) {
	c := Config{Uid: u32(1)}
	f := newFilter(t, c, "home/**")
	if !f.Covers("home") || !f.Covers("home/x") || f.Covers("homex") {
		t.Error("Covers wrong")
	}
	if got := f.Config(); got.Uid == nil || *got.Uid != 1 || got.Gid != nil || len(got.Paths) != 1 {
		t.Errorf("Config() = %+v", got)
	}
}

// TestWhole checks that a whole-view remap presents the mount root too, and
// refuses its chmod like any other path's.
func TestWhole(t *testing.T) {
	f := New(Config{Whole: true, Uid: u32(1000), FileMode: u32(0o644), DirMode: u32(0o755)})
	for _, p := range []string{"", "a", "a/b/c"} {
		if !f.Covers(p) || !f.CoversBelow(p) {
			t.Errorf("%q: Covers %v, CoversBelow %v; want both", p, f.Covers(p), f.CoversBelow(p))
		}
	}
	a := filter.Attr{Mode: dir | 0o700}
	if !f.Attr(&filter.Request{Op: filter.OpGetattr}, "", &a) || a != (filter.Attr{Mode: dir | 0o755, Uid: 1000}) {
		t.Errorf("root presented as %+v", a)
	}
	r := filter.Request{Op: filter.OpSetattr, Path: "", Type: dir, Mode: 0o700, SetAttr: filter.SetAttr{Mode: true}}
	if err := f.Pre(&r); err != syscall.EPERM {
		t.Errorf("chmod of the root: %v, want EPERM", err)
	}
	// Without Whole, nothing covers the root.
	if g := newFilter(t, Config{Uid: u32(1)}, "**"); g.Covers("") {
		t.Error(`"**" covers the root`)
	}
}
