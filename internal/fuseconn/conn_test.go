package fuseconn

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// TestMountData checks the flags and option string of mount(2): the words
// the kernel refuses become flags, the rest go in the string after the
// connection's own options, and allow_other is added.
func TestMountData(t *testing.T) {
	owner := fmt.Sprintf("user_id=%d,group_id=%d", os.Geteuid(), os.Getegid())
	for _, c := range []struct {
		name      string
		opts      fuse.MountOptions
		flags     uintptr
		wantWords string
	}{
		{"defaults", fuse.MountOptions{MaxWrite: 1 << 20}, unix.MS_NOSUID | unix.MS_NODEV, ""},
		{"flags kept", fuse.MountOptions{MaxWrite: 4096, DirectMountFlags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOATIME},
			unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOATIME, ""},
		{"words to flags", fuse.MountOptions{MaxWrite: 4096, Options: []string{"suid", "dev", "noexec", "ro", "default_permissions"}},
			unix.MS_NOEXEC, ",ro,default_permissions"},
		{"allow_other", fuse.MountOptions{MaxWrite: 4096, AllowOther: true}, unix.MS_NOSUID | unix.MS_NODEV, ",allow_other"},
	} {
		t.Run(c.name, func(t *testing.T) {
			flags, data := mountData(7, unix.S_IFDIR|0o755, &c.opts)
			if flags != c.flags {
				t.Errorf("flags %#x, want %#x", flags, c.flags)
			}
			want := fmt.Sprintf("fd=7,rootmode=40000,%s,max_read=%d%s", owner, c.opts.MaxWrite, c.wantWords)
			if data != want {
				t.Errorf("options %q, want %q", data, want)
			}
			if strings.Contains(data, "suid") || strings.Contains(data, "noexec") {
				t.Errorf("options %q carry a word the kernel refuses", data)
			}
		})
	}
}
