package systest

// Tests from the attacker's seat: an unprivileged caller (uid 1000) through
// an allow_other mount tries the routes around a rule that docs/security.md
// lists, and sometimes a second process rewrites the lower tree meanwhile.
// Each test names the class of docs/security.md it closes.

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/filter/hide"
	"github.com/sievefs/sievefs/filter/redact"
	"github.com/sievefs/sievefs/filter/remap"
	"github.com/sievefs/sievefs/internal/fusetest"
)

// everyoneButRoot is the condition of a rule that covers every caller but
// root.
var everyoneButRoot = filter.Condition{Unless: &filter.Callers{Uids: []uint32{0}}}

// TestAttackDataRoutes (class 1): a caller a redact rule covers gets no
// raw byte of the file through copy_file_range, lseek's data map or
// fallocate, with passthrough on and off.
func TestAttackDataRoutes(t *testing.T) {
	for _, mode := range []sievefs.PassthroughMode{sievefs.PassthroughAuto, sievefs.PassthroughOff} {
		t.Run(string(mode), func(t *testing.T) {
			low := fusetest.NewLower(t)
			img, ranges := fusetest.GPSJPEG(t)
			want := fusetest.Redacted(img, ranges)
			fusetest.LayTree(t, low, "photos/", "out/")
			// A hole after the image: the lower file's data map says
			// where it is.
			const size = 1 << 20
			fusetest.WriteFile(t, filepath.Join(low, "photos/geo.jpg"), img)
			if err := os.Truncate(filepath.Join(low, "photos/geo.jpg"), size); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(filepath.Join(low, "out"), 1000, 1000); err != nil {
				t.Fatal(err)
			}
			rd, err := redact.New(fusetest.Globs("photos/**"), []string{"gps"})
			if err != nil {
				t.Fatal(err)
			}
			chain := fusetest.RulesOf(t, filter.Rule{Name: "redact", Filter: rd, When: everyoneButRoot})
			v := fusetest.MountLower(t, low, sievefs.Options{Rules: chain, AllowOther: true, Passthrough: mode})
			fusetest.OpenUp(t, filepath.Dir(v.Mnt))

			var copyErr, seekErr, fallocErr, cloneErr error
			var hole int64
			fusetest.AsCaller(t, 1000, 1000, func() {
				src, err := os.Open(v.Path("photos/geo.jpg"))
				if err != nil {
					copyErr = err
					return
				}
				defer src.Close()
				dst, err := os.OpenFile(v.Path("out/copy.jpg"), os.O_RDWR|os.O_CREATE, 0o644)
				if err != nil {
					copyErr = err
					return
				}
				defer dst.Close()
				var offIn, offOut int64
				for offIn < int64(len(img)) {
					n, err := unix.CopyFileRange(int(src.Fd()), &offIn, int(dst.Fd()), &offOut, len(img)-int(offIn), 0)
					if err != nil || n == 0 {
						copyErr = err
						break
					}
				}
				hole, seekErr = unix.Seek(int(src.Fd()), 0, unix.SEEK_HOLE)
				cloneErr = unix.IoctlFileClone(int(dst.Fd()), int(src.Fd()))
			})
			if cloneErr == nil {
				t.Error("FICLONE from a claimed file succeeded")
			}
			fusetest.WantErr(t, "uid 1000 copy_file_range", copyErr, 0)
			got := fusetest.ReadFile(t, filepath.Join(low, "out/copy.jpg"))
			if !bytes.Equal(got, want) {
				t.Errorf("copy_file_range by a covered caller copied %d bytes, equal to the raw file: %v, to the redacted one: %v",
					len(got), bytes.Equal(got, img), bytes.Equal(got, want))

			}
			fusetest.WantErr(t, "uid 1000 SEEK_HOLE", seekErr, 0)
			if hole != size {
				t.Errorf("SEEK_HOLE on a claimed file: %d, want the size %d (all data)", hole, size)
			}
			fusetest.AsCaller(t, 1000, 1000, func() {
				f, err := os.OpenFile(v.Path("photos/geo.jpg"), os.O_RDWR, 0)
				if err != nil {
					fallocErr = err
					return
				}
				defer f.Close()
				fallocErr = unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, 4096)
			})
			// photos/geo.jpg is root's 0644: the open for writing fails
			// first, which closes the route as well.
			if fallocErr == nil {
				t.Error("fallocate of a claimed file succeeded")
			}
		})
	}
}

// TestAttackFallocateClaimed (class 1): fallocate on an open a data rule
// serves is refused, so that it cannot change data around the stream.
func TestAttackFallocateClaimed(t *testing.T) {
	low := fusetest.NewLower(t)
	img, _ := fusetest.GPSJPEG(t)
	fusetest.LayTree(t, low, "photos/")
	fusetest.WriteFile(t, filepath.Join(low, "photos/geo.jpg"), img)
	if err := os.Chown(filepath.Join(low, "photos/geo.jpg"), 1000, 1000); err != nil {
		t.Fatal(err)
	}
	rd, err := redact.New(fusetest.Globs("photos/**"), []string{"gps"})
	if err != nil {
		t.Fatal(err)
	}
	v := fusetest.MountFiltered(t, low, fusetest.RulesOf(t, filter.Rule{Filter: rd, When: everyoneButRoot}), true)
	var ferr error
	fusetest.AsCaller(t, 1000, 1000, func() {
		f, err := os.OpenFile(v.Path("photos/geo.jpg"), os.O_RDWR, 0)
		if err != nil {
			ferr = err
			return
		}
		defer f.Close()
		ferr = unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_ZERO_RANGE|unix.FALLOC_FL_KEEP_SIZE, 0, 16)
	})
	fusetest.WantErr(t, "uid 1000 fallocate of a claimed file", ferr, syscall.EOPNOTSUPP)
	if got := fusetest.ReadFile(t, filepath.Join(low, "photos/geo.jpg")); !bytes.Equal(got, img) {
		t.Error("the lower file changed")
	}
}

// posixACL encodes a POSIX access ACL (the system.posix_acl_* xattr value)
// that gives uid 1001 full access.
func posixACL() []byte {
	le := binary.LittleEndian
	b := le.AppendUint32(nil, 2) // version
	for _, e := range []struct {
		tag, perm uint16
		id        uint32
	}{{0x01, 7, 0xffffffff}, {0x02, 7, 1001}, {0x04, 5, 0xffffffff}, {0x10, 7, 0xffffffff}, {0x20, 5, 0xffffffff}} {
		b = le.AppendUint16(b, e.tag)
		b = le.AppendUint16(b, e.perm)
		b = le.AppendUint32(b, e.id)
	}
	return b
}

// TestAttackRemapACL (class 6): the owner a remap rule presents cannot
// change the lower file's or directory's (default) ACLs through the mount,
// as it cannot chmod.
func TestAttackRemapACL(t *testing.T) {
	low := fusetest.NewLower(t)
	fusetest.LayTree(t, low, "shared/f", "shared/sub/")
	uid, gid, fileMode, dirMode := uint32(1000), uint32(1000), uint32(0o640), uint32(0o755)
	chain := fusetest.RulesOf(t, filter.Rule{Filter: remap.New(remap.Config{
		Paths: fusetest.Globs("shared/**"), Uid: &uid, Gid: &gid, FileMode: &fileMode, DirMode: &dirMode,
	})})
	v := fusetest.MountFiltered(t, low, chain, true)
	before := fusetest.Snapshot(t, low)
	acl := posixACL()
	for _, c := range []struct{ path, name string }{
		{"shared/f", "system.posix_acl_access"},
		{"shared/sub", "system.posix_acl_access"},
		{"shared/sub", "system.posix_acl_default"},
	} {
		var err error
		fusetest.AsCaller(t, 1000, 1000, func() { err = unix.Setxattr(v.Path(c.path), c.name, acl, 0) })
		fusetest.WantErr(t, "presented owner sets "+c.name+" on "+c.path, err, syscall.EPERM)
		fusetest.AsCaller(t, 1000, 1000, func() { err = unix.Removexattr(v.Path(c.path), c.name) })
		if err == nil {
			t.Errorf("presented owner removed %s of %s", c.name, c.path)
		}
	}
	fusetest.SameSnapshot(t, "lower tree after ACL attempts", before, fusetest.Snapshot(t, low))
	// Other xattrs are not mode changes.
	var err error
	fusetest.AsCaller(t, 1000, 1000, func() { err = unix.Setxattr(v.Path("shared/f"), "user.note", []byte("x"), 0) })
	fusetest.WantErr(t, "presented owner sets a user xattr", err, 0)
}

// TestAttackMovedOutDirectory (class 7): a directory moved out of the
// lower tree by another process cannot be changed through a descriptor a
// client still holds: no chmod, chown, utimes, xattr or ACL reaches it.
func TestAttackMovedOutDirectory(t *testing.T) {
	fusetest.RequireFuse(t)
	base := t.TempDir()
	low, outside := filepath.Join(base, "lower"), filepath.Join(base, "outside")
	fusetest.LayTree(t, low, "d/f")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	// Cache never: the directory is checked at every use (with the
	// default it is trusted for up to a second after its last check).
	v := fusetest.MountLower(t, low, sievefs.Options{Cache: sievefs.CacheNever})
	dir, err := os.Open(v.Path("d"))
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	fd := int(dir.Fd())
	fusetest.Beside(t, "rename", filepath.Join(low, "d"), filepath.Join(outside, "d"))
	before := fusetest.Snapshot(t, outside)
	for what, err := range map[string]error{
		"fchmod":    unix.Fchmod(fd, 0o777),
		"fchown":    unix.Fchown(fd, 1234, 1234),
		"futimens":  unix.UtimesNanoAt(fd, "", []unix.Timespec{{Sec: 1}, {Sec: 1}}, unix.AT_EMPTY_PATH),
		"fsetxattr": unix.Fsetxattr(fd, "user.x", []byte("1"), 0),
		"acl":       unix.Fsetxattr(fd, "system.posix_acl_default", posixACL(), 0),
		"mkdirat":   unix.Mkdirat(fd, "new", 0o755),
	} {
		if err == nil {
			t.Errorf("%s through a descriptor of a directory moved out of the tree succeeded", what)
		}
	}
	fusetest.SameSnapshot(t, "the directory moved out", before, fusetest.Snapshot(t, outside))
}

// TestAttackHiddenLinkCount (class 9): a directory's link count does not
// tell how many subdirectories a rule hides.
func TestAttackHiddenLinkCount(t *testing.T) {
	low := fusetest.NewLower(t)
	fusetest.LayTree(t, low, "d/a/", "d/secret/", "d/also-secret/", "plain/a/", "plain/b/")
	v := fusetest.MountFiltered(t, low, fusetest.RulesOf(t, filter.Rule{Filter: hide.New(fusetest.Globs("d/*secret*"))}), true)
	nlink := func(path string) uint64 {
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			t.Fatal(err)
		}
		return st.Nlink
	}
	if got := nlink(v.Path("d")); got != 1 {
		t.Errorf("d, with hidden subdirectories: nlink %d, want 1 (not counted)", got)
	}
	if got, want := nlink(v.Path("plain")), nlink(filepath.Join(low, "plain")); got != want {
		t.Errorf("plain, nothing hidden beneath: nlink %d, want the lower %d", got, want)
	}
	// Nor does its size (tmpfs counts 20 bytes per entry) or blocks.
	var st unix.Stat_t
	if err := unix.Lstat(v.Path("d"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != 0 || st.Blocks != 0 {
		t.Errorf("d, with hidden subdirectories: size %d blocks %d, want 0 0", st.Size, st.Blocks)
	}
}

// TestAttackHiddenOrAbsent (class 9): a hidden name and an absent one
// look the same from the kernel's cache: each is looked up once, then
// answered as absent by the kernel, so that whether a lookup reaches the
// daemon (and how long it takes) does not tell them apart.
func TestAttackHiddenOrAbsent(t *testing.T) {
	low := fusetest.NewLower(t)
	fusetest.LayTree(t, low, "d/secret", "d/visible")
	v := fusetest.MountLower(t, low, sievefs.Options{Rules: fusetest.RulesOf(t, filter.Rule{Filter: hide.New(fusetest.Globs("d/secret"))}), Cache: sievefs.CacheAlways})
	lookups := func(name string) uint64 {
		before := v.Mount.Requests("lookup")
		for range 3 {
			if _, err := os.Stat(v.Path("d/" + name)); !os.IsNotExist(err) {
				t.Fatalf("stat d/%s: %v, want ENOENT", name, err)
			}
		}
		return v.Mount.Requests("lookup") - before
	}
	if _, err := os.Stat(v.Path("d/visible")); err != nil {
		t.Fatal(err)
	}
	hidden, absent := lookups("secret"), lookups("absent")
	if hidden != absent {
		t.Errorf("3 stats of a hidden name reached the daemon %d times, of an absent name %d times", hidden, absent)
	}
	// A reload that shows the name drops the cached absence.
	if err := v.Mount.SetRules(fusetest.RulesOf(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(v.Path("d/secret")); err != nil {
		t.Errorf("after a reload without the hide rule, stat d/secret: %v", err)
	}
}

// bySize is a library filter that hides regular files larger than limit
// from every caller but root, judging the attributes in Post(lookup): the
// filter the lookup decision must not let a listing or a create bypass.
type bySize struct{ limit uint64 }

func (bySize) Kind() string { return "by-size" }

func (b bySize) Post(r *filter.Request, err error) error {
	if err == nil && r.Op == filter.OpLookup && r.Caller.Uid != 0 &&
		r.Attr.Mode&syscall.S_IFMT == syscall.S_IFREG && r.Attr.Size > b.limit {
		return syscall.ENOENT
	}
	return err
}

func (bySize) DependsOnCaller(string) bool { return true }

// TestAttackAttrJudge (class 10): a filter that judges nodes by their
// attributes in Post(lookup) is asked about every node the kernel learns
// of: readdirplus entries, and a create or link that finds the file.
func TestAttackAttrJudge(t *testing.T) {
	low := fusetest.NewLower(t)
	fusetest.LayTree(t, low, "dir/")
	fusetest.WriteFile(t, filepath.Join(low, "dir/small"), []byte("s"))
	fusetest.WriteFile(t, filepath.Join(low, "dir/big"), bytes.Repeat([]byte("b"), 1000))
	for _, p := range []string{"dir", "dir/small", "dir/big"} {
		if err := os.Chmod(filepath.Join(low, p), 0o777); err != nil {
			t.Fatal(err)
		}
	}
	v := fusetest.MountFiltered(t, low, fusetest.RulesOf(t, filter.Rule{Filter: bySize{limit: 100}}), true)
	var names []string
	var listErr, statErr, createErr, linkErr error
	fusetest.AsCaller(t, 1000, 1000, func() {
		// A listing first: readdirplus hands the kernel nodes.
		ents, err := os.ReadDir(v.Path("dir"))
		listErr = err
		for _, e := range ents {
			names = append(names, e.Name())
		}
		_, statErr = os.Stat(v.Path("dir/big"))
		f, err := os.OpenFile(v.Path("dir/big"), os.O_RDWR|os.O_CREATE, 0o666)
		if err == nil {
			f.Close()
		}
		createErr = err
		linkErr = os.Link(v.Path("dir/big"), v.Path("dir/big2"))
	})
	fusetest.WantErr(t, "uid 1000 list", listErr, 0)
	if slices.Contains(names, "big") || !slices.Contains(names, "small") {
		t.Errorf("uid 1000 lists %q, want small without big", names)
	}
	fusetest.WantErr(t, "uid 1000 stat of the hidden file after a listing", statErr, syscall.ENOENT)
	if createErr == nil {
		t.Error("uid 1000 opened the hidden file with O_CREAT")
	}
	if linkErr == nil {
		t.Error("uid 1000 linked the hidden file")
	}
	if got := fusetest.ReadFile(t, filepath.Join(low, "dir/big")); len(got) != 1000 {
		t.Errorf("the hidden file changed: %d bytes", len(got))
	}
	if _, err := os.Stat(v.Path("dir/big")); err != nil {
		t.Errorf("root stat of dir/big: %v", err)
	}
}

// TestAttackSetIDPassthrough (class 13): a write by an unprivileged caller
// clears set-ID bits whatever way its open got passthrough: sharing a
// backing file root opened, or opened before the bits were set.
func TestAttackSetIDPassthrough(t *testing.T) {
	low := fusetest.NewLower(t)
	v := fusetest.MountFiltered(t, low, fusetest.RulesOf(t), true)
	fusetest.RequirePassthrough(t, v.Mount)
	mode := func(name string) uint32 {
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(low, name), &st); err != nil {
			t.Fatal(err)
		}
		return st.Mode & 07777
	}
	write := func(f *os.File) (err error) {
		fusetest.AsCaller(t, 1000, 1000, func() { _, err = f.WriteAt([]byte("evil"), 0) })
		return err
	}
	openAs := func(name string) (f *os.File, err error) {
		fusetest.AsCaller(t, 1000, 1000, func() { f, err = os.OpenFile(v.Path(name), os.O_WRONLY, 0) })
		return f, err
	}

	// Shared backing file: root holds the file open first.
	fusetest.WriteFile(t, filepath.Join(low, "shared"), []byte("program"))
	if err := unix.Chmod(filepath.Join(low, "shared"), 0o4777); err != nil {
		t.Fatal(err)
	}
	held, err := os.Open(v.Path("shared"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	f, err := openAs("shared")
	if err != nil {
		t.Fatal(err)
	}
	fusetest.WantErr(t, "uid 1000 write to a set-user-ID file", write(f), 0)
	f.Close()
	if m := mode("shared"); m&unix.S_ISUID != 0 {
		t.Errorf("after uid 1000 wrote through a shared backing file, mode %o keeps set-user-ID", m)
	}

	// Bits set after the unprivileged writer opened the file.
	fusetest.WriteFile(t, filepath.Join(low, "late"), []byte("program"))
	if err := os.Chmod(filepath.Join(low, "late"), 0o777); err != nil {
		t.Fatal(err)
	}
	f, err = openAs("late")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Chmod(filepath.Join(low, "late"), 0o6777); err != nil {
		t.Fatal(err)
	}
	fusetest.WantErr(t, "uid 1000 write after the bits were set", write(f), 0)
	if m := mode("late"); m&(unix.S_ISUID|unix.S_ISGID) != 0 {
		t.Errorf("after uid 1000 wrote, mode %o keeps set-ID bits set after its open", m)
	}
}

// answering answers operations on paths under "answered/" itself.
type answering struct{}

func (answering) Kind() string { return "answering" }

func (answering) Pre(r *filter.Request) error {
	if len(r.Path) < 9 || r.Path[:9] != "answered/" {
		return nil
	}
	switch r.Op {
	case filter.OpRename, filter.OpUnlink, filter.OpSetxattr:
	case filter.OpGetattr, filter.OpStatx:
		r.Attr = filter.Attr{Ino: 77, Mode: syscall.S_IFREG | 0o600, Nlink: 1, Size: 42}
	case filter.OpListxattr:
		r.Value = []byte("user.one\x00user.two\x00")
	case filter.OpGetxattr:
		r.Value = []byte("answer")
	default:
		return nil
	}
	return filter.ErrAnswered
}

// TestErrAnswered checks that every operation the table marks answerable
// takes a filter's answer, leaving the lower tree alone.
func TestErrAnswered(t *testing.T) {
	low := fusetest.NewLower(t)
	fusetest.LayTree(t, low, "answered/f", "answered/g")
	v := fusetest.MountLower(t, low, sievefs.Options{Rules: fusetest.RulesOf(t, filter.Rule{Filter: answering{}}), Cache: sievefs.CacheNever})
	before := fusetest.Snapshot(t, low)
	fusetest.WantErr(t, "answered rename", os.Rename(v.Path("answered/f"), v.Path("answered/h")), 0)
	fusetest.WantErr(t, "answered unlink", os.Remove(v.Path("answered/g")), 0)
	fusetest.WantErr(t, "answered setxattr", unix.Setxattr(v.Path("answered/f"), "user.x", []byte("1"), 0), 0)
	buf := make([]byte, 256)
	n, err := unix.Listxattr(v.Path("answered/f"), buf)
	fusetest.WantErr(t, "answered listxattr", err, 0)
	if got := string(buf[:max(n, 0)]); got != "user.one\x00user.two\x00" {
		t.Errorf("answered listxattr: %q", got)
	}
	n, err = unix.Getxattr(v.Path("answered/f"), "user.any", buf)
	if fusetest.WantErr(t, "answered getxattr", err, 0); string(buf[:max(n, 0)]) != "answer" {
		t.Errorf("answered getxattr: %q", buf[:max(n, 0)])
	}
	var stx unix.Statx_t
	err = unix.Statx(unix.AT_FDCWD, v.Path("answered/f"), unix.AT_STATX_FORCE_SYNC, unix.STATX_BASIC_STATS|unix.STATX_BTIME, &stx)
	if fusetest.WantErr(t, "answered statx", err, 0); stx.Size != 42 {
		t.Errorf("answered statx: size %d, want 42", stx.Size)
	}
	fusetest.SameSnapshot(t, "lower tree after answered operations", before, fusetest.Snapshot(t, low))
}
