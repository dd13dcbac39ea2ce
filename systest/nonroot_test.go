package systest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sievefs/sievefs/internal/fusetest"
)

// nonrootScript runs, in a private mount namespace, an unprivileged
// sievefs daemon through fusermount3, uses the mount as that user and
// unmounts it. /dev/fuse is 0600 on this machine (most systems make it 0666
// for exactly this); the namespace gets a 0666 node of the same device so
// that the machine's own node stays as it is.
const nonrootScript = `
set -eu
mknod "$WORK/fuse" c 10 229
chmod 666 "$WORK/fuse"
mount --bind "$WORK/fuse" /dev/fuse
as_user() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
# Not through as_user: a backgrounded function runs in a subshell, and $!
# would be the subshell's pid rather than the daemon's.
setpriv --reuid=65534 --regid=65534 --clear-groups "$BIN" mount $FLAGS "$LOW" "$MNT" >"$WORK/daemon.log" 2>&1 &
pid=$!
for i in $(seq 200); do
	grep -q " $MNT fuse.sievefs " /proc/self/mounts && break
	kill -0 $pid 2>/dev/null || { echo "daemon exited"; cat "$WORK/daemon.log"; exit 1; }
	sleep 0.05
done
grep -q " $MNT fuse.sievefs " /proc/self/mounts || { echo "not mounted"; cat "$WORK/daemon.log"; exit 1; }
echo "read: $(as_user cat "$MNT/f")"
as_user sh -c "echo written > '$MNT/g'"
echo "lower g: $(cat "$LOW/g") owner $(stat -c %u "$LOW/g")"
kill -TERM $pid
rc=0; wait $pid || rc=$?
echo "daemon exit $rc"
grep -q " $MNT " /proc/self/mounts && echo "still mounted" || echo "unmounted"
cat "$WORK/daemon.log"
`

// TestNonRootMount checks that an ordinary user can mount a view of their
// own directory through fusermount3, with data served by the daemon (no
// CAP_SYS_ADMIN, so no passthrough), and that SIGTERM unmounts it; with
// each transport.
func TestNonRootMount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to set up the unprivileged user's view")
	}
	bin := fusetest.UserBinary(t)
	for _, transport := range []string{"go-fuse", "dev"} {
		t.Run(transport, func(t *testing.T) {
			work, low, mnt := fusetest.NonRootWork(t)
			fusetest.UserSockets(t, 65534, mnt)
			fusetest.WriteFile(t, filepath.Join(low, "f"), []byte("hello"))
			for _, p := range []string{low, mnt, filepath.Join(low, "f")} {
				if err := os.Chown(p, 65534, 65534); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c", nonrootScript)
			cmd.Env = append(os.Environ(), "WORK="+work, "BIN="+bin, "LOW="+low, "MNT="+mnt, "FLAGS=--transport "+transport)
			out, err := cmd.CombinedOutput()
			t.Logf("%s", out)
			if err != nil {
				t.Fatalf("non-root mount script: %v", err)
			}
			for _, want := range []string{"read: hello", "lower g: written owner 65534", "daemon exit 0", "unmounted", "passthrough unavailable", "transport=" + transport} {
				if !strings.Contains(string(out), want) {
					t.Errorf("output lacks %q", want)
				}
			}
		})
	}
}
