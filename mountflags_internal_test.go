package sievefs

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMountFlags checks how the mount flags of Options are split between
// the flags of a direct mount (root) and the words go-fuse passes on, which
// for other users are all that reaches fusermount3.
func TestMountFlags(t *testing.T) {
	const base = unix.MS_NOSUID | unix.MS_NODEV
	all := Options{ReadOnly: true, NoExec: true, Atime: AtimeNever, NoDirAtime: true, NoSymFollow: true}
	for _, c := range []struct {
		name  string
		opts  Options
		root  bool
		flags uintptr
		words []string
	}{
		{"DefaultRoot", Options{}, true, base, nil},
		{"DefaultUser", Options{}, false, base, nil},
		{"AllRoot", all, true, base | unix.MS_RDONLY | unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_NOSYMFOLLOW,
			[]string{"ro", "noexec"}},
		{"AllUser", all, false, base | unix.MS_RDONLY, []string{"ro", "noexec", "noatime", "nodiratime", "nosymfollow"}},
		// go-fuse's direct mount clears MS_NOSUID and MS_NODEV for these
		// words; the flags must not be 0, which go-fuse reads as "default".
		{"SuidDevRoot", Options{Suid: true, Dev: true}, true, base, []string{"suid", "dev"}},
		{"StrictRoot", Options{Atime: AtimeStrict}, true, base | unix.MS_STRICTATIME, nil},
		{"StrictUser", Options{Atime: AtimeStrict}, false, base, []string{"strictatime"}},
		// relatime is the kernel's default: fusermount3 needs no word.
		{"RelatimeUser", Options{Atime: AtimeRelative}, false, base, nil},
		{"RelatimeRoot", Options{Atime: AtimeRelative}, true, base | unix.MS_RELATIME, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			flags, words, err := mountFlags(c.opts, c.root)
			if err != nil {
				t.Fatal(err)
			}
			if flags != c.flags || !slices.Equal(words, c.words) {
				t.Errorf("flags %#x, words %q; want %#x, %q", flags, words, c.flags, c.words)
			}
		})
	}
}

// TestMountFlagsRefused checks that suid and dev are refused for a daemon
// that does not run as root (fusermount3 would only warn and mount
// nosuid,nodev), and that an unknown atime mode is refused.
func TestMountFlagsRefused(t *testing.T) {
	for _, c := range []struct {
		opts Options
		root bool
		want string
	}{
		{Options{Suid: true}, false, "suid: only a daemon running as root"},
		{Options{Dev: true}, false, "dev: only a daemon running as root"},
		{Options{Atime: "sometimes"}, true, `atime mode "sometimes"`},
	} {
		_, _, err := mountFlags(c.opts, c.root)
		if !errors.Is(err, ErrMountOption) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v (root %v): %v; want ErrMountOption with %q", c.opts, c.root, err, c.want)
		}
	}
}

// TestCheckNames checks which sources (FsName) and types (Subtype) a mount
// takes.
func TestCheckNames(t *testing.T) {
	for _, c := range []struct {
		opts Options
		ok   bool
	}{
		{Options{}, true},
		{Options{FsName: "user@host:/srv data", Subtype: "sieve_2.x-y+z"}, true},
		{Options{FsName: "a,b"}, false},
		{Options{FsName: "a\nb"}, false},
		{Options{Subtype: "a b"}, false},
		{Options{Subtype: "a/b"}, false},
		{Options{Subtype: "é"}, false},
	} {
		err := checkNames(c.opts)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrMountOption)) {
			t.Errorf("%q, %q: %v; want ok %v", c.opts.FsName, c.opts.Subtype, err, c.ok)
		}
	}
}
