package main

// Tests of the command as an ordinary user (uid 1000) meets it: mounting
// without XDG_RUNTIME_DIR, status and umount as that user, and a machine
// where the user may not use FUSE. Each runs a shell script as root in a
// new mount and PID namespace (unshare), which starts the daemons and runs
// the commands as the user with setpriv: when the script ends, however it
// ends, the kernel kills every process left in the namespace and its mounts
// go with it.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sievefs/sievefs/control"
	"github.com/sievefs/sievefs/internal/fusetest"
)

// testUID is the ordinary user of these tests.
const testUID = 1000

// userPrelude is the start of every script: helpers, and the cleanup that
// stops the daemons the script started (listed in $pids) and detaches what
// they left mounted under $WORK. The namespace's copies of the machine's
// FUSE mounts are detached first: they would count as other users' mounts,
// and would keep those mounts' connections open after their tests unmount
// them.
const userPrelude = `
set -u
as_user() { setpriv --reuid=1000 --regid=1000 --clear-groups env -u XDG_RUNTIME_DIR "$@"; }
pids=""
cleanup() {
	for p in $pids; do kill -TERM "$p" 2>/dev/null; done
	for p in $pids; do wait "$p" 2>/dev/null; done
	awk -v w="$WORK/" 'index($2, w) == 1 { print $2 }' /proc/self/mounts | while read -r m; do umount -l "$m"; done
}
trap cleanup EXIT
awk '$3 ~ /^fuse/ { print $2 }' /proc/self/mounts | while read -r m; do umount -l "$m" 2>/dev/null; done
# A /dev/fuse the user may open (most systems make it 0666; here it is 0600).
open_fuse() {
	mknod "$WORK/fuse" c 10 229 && chmod 666 "$WORK/fuse" && mount --bind "$WORK/fuse" /dev/fuse
}
# wait_mounted MNT: until a sievefs view is mounted on MNT.
wait_mounted() {
	for i in $(seq 200); do
		grep -q " $1 fuse.sievefs " /proc/self/mounts && return 0
		sleep 0.05
	done
	echo "nothing mounted on $1"; return 1
}
# wait_exit PID: the exit code of the child PID, or 124 if it is still
# running after 20 s.
wait_exit() {
	for i in $(seq 400); do
		case "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" in ""|Z) wait "$1"; return;; esac
		sleep 0.05
	done
	echo "pid $1 did not exit within 20s"; return 124
}
# wait_answers MNT: until the user's status of MNT says it runs.
wait_answers() {
	for i in $(seq 200); do
		as_user "$BIN" status "$1" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	echo "status of $1 never answered:"; as_user "$BIN" status "$1"; return 1
}
`

// userWork prepares a test's directories: LOW and MNT for the user, RLOW
// and RMNT for root, and the binary where the user can run it. Cleanup
// removes the control sockets and directories the user's daemons leave.
func userWork(t *testing.T) map[string]string {
	t.Helper()
	requireFuse(t)
	if _, err := exec.LookPath("awk"); err != nil {
		t.Skip("awk not installed")
	}
	bin := fusetest.UserBinary(t)
	work, low, mnt := fusetest.NonRootWork(t)
	for _, p := range []string{low, mnt} {
		if err := os.Chown(p, testUID, testUID); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"WORK": work, "BIN": bin, "LOW": low, "MNT": mnt,
		"RLOW": filepath.Join(work, "rlow"), "RMNT": filepath.Join(work, "rmnt")}
	for _, d := range []string{env["RLOW"], env["RMNT"]} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fusetest.UserSockets(t, testUID, mnt)
	return env
}

// runUserScript runs userPrelude and script as root in a new mount and PID
// namespace with env, and returns its output. The namespace ends with the
// script, or after two minutes if it hangs.
func runUserScript(t *testing.T, env map[string]string, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--propagation", "private",
		"--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c", userPrelude+script)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.CombinedOutput()
	t.Logf("script output:\n%s", out)
	if err != nil {
		t.Fatalf("script: %v", err)
	}
	return string(out)
}

// userStatusScript mounts a view as root and one as the user (without
// XDG_RUNTIME_DIR), and runs status and umount as the user. With RUNTIME
// set, the user has a runtime directory, /run/user/1000; without, none.
const userStatusScript = `
set -e
open_fuse
mount -t tmpfs -o mode=0755 tmpfs /run/user
if [ -n "$RUNTIME" ]; then mkdir -m 0700 /run/user/1000; chown 1000:1000 /run/user/1000; fi
sockets() { echo $(ls "$SOCKDIR" 2>/dev/null); }
echo "sockets before: $(sockets)"
"$BIN" mount "$RLOW" "$RMNT" >"$WORK/root.log" 2>&1 &
pids="$pids $!"
setpriv --reuid=1000 --regid=1000 --clear-groups env -u XDG_RUNTIME_DIR "$BIN" mount "$LOW" "$MNT" >"$WORK/user.log" 2>&1 &
upid=$!
pids="$pids $upid"
wait_mounted "$RMNT"
wait_mounted "$MNT"
wait_answers "$MNT"
set +e
echo "sockets running: $(sockets)"
echo "others: $(awk '$3 == "fuse.sievefs" && $4 !~ /user_id=1000,/' /proc/self/mounts | wc -l)"
as_user "$BIN" status >"$WORK/status.out" 2>&1
echo "user status exit $?"
as_user "$BIN" status --json >"$WORK/status.json" 2>"$WORK/status.err"
echo "user status --json exit $?"
"$BIN" status "$MNT" >"$WORK/root-status.out" 2>&1
echo "root status exit $?"
setpriv --reuid=65534 --regid=65534 --clear-groups "$BIN" umount "$MNT" >"$WORK/other-umount.out" 2>&1
echo "other user's umount exit $?"
# A process of the user working in the view keeps it busy.
setpriv --reuid=1000 --regid=1000 --clear-groups sh -c 'cd "$1" && exec sleep 600' sh "$MNT" &
hpid=$!
pids="$pids $hpid"
for i in $(seq 200); do [ "$(readlink /proc/$hpid/cwd)" = "$MNT" ] && break; sleep 0.05; done
as_user "$BIN" umount "$MNT" >"$WORK/busy-umount.out" 2>&1
echo "busy umount exit $?"
as_user "$BIN" umount --lazy "$MNT" &
lpid=$!
for i in $(seq 200); do grep -q " $MNT " /proc/self/mounts || break; sleep 0.05; done
grep -q " $MNT " /proc/self/mounts && echo "user mount still there" || echo "user mount gone"
kill $hpid
wait_exit $lpid
echo "lazy umount exit $?"
wait_exit $upid
echo "user daemon exit $?"
echo "sockets after: $(sockets)"
`

// TestUserStatusUmount: a user's daemon started without XDG_RUNTIME_DIR
// makes its control socket in /tmp/sievefs-UID (or /run/user/UID/sievefs
// when the user has that), where the user's status and umount and root's
// status find it; the user's status shows the user's own mount and counts
// root's, exiting 0; the user's umount goes through fusermount3: it refuses
// a busy mount, detaches it with --lazy and waits for the daemon; another
// user's umount is refused with the reason.
func TestUserStatusUmount(t *testing.T) {
	for _, c := range []struct{ name, runtime, sockdir string }{
		{"no runtime directory", "", fmt.Sprintf("/tmp/sievefs-%d", testUID)},
		{"runtime directory", "yes", fmt.Sprintf("/run/user/%d/sievefs", testUID)},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := userWork(t)
			env["RUNTIME"], env["SOCKDIR"] = c.runtime, c.sockdir
			out := runUserScript(t, env, userStatusScript)
			mnt, rmnt := env["MNT"], env["RMNT"]
			if added := newSockets(out); len(added) != 1 {
				t.Errorf("the user's daemon made %d sockets in %s: %q", len(added), c.sockdir, added)
			}
			for _, want := range []string{"user status exit 0", "user status --json exit 0",
				"root status exit 0", "other user's umount exit 1", "busy umount exit 1", "user mount gone",
				"lazy umount exit 0", "user daemon exit 0"} {
				if !strings.Contains(out, want+"\n") {
					t.Errorf("output lacks %q", want)
				}
			}
			var others int
			for _, line := range strings.Split(out, "\n") {
				if v, ok := strings.CutPrefix(line, "others: "); ok {
					fmt.Sscan(v, &others)
				}
			}
			if others < 1 {
				t.Fatalf("root's mount is not among the mounts (others: %d)", others)
			}
			status := readFile(t, filepath.Join(env["WORK"], "status.out"))
			note := "not shown: 1 sievefs mount of another user"
			if others > 1 {
				note = fmt.Sprintf("not shown: %d sievefs mounts of other users", others)
			}
			if !strings.Contains(status, mnt+": running (pid ") || !strings.Contains(status, note) || strings.Contains(status, rmnt) {
				t.Errorf("the user's status should show %s running and %q, and not %s:\n%s", mnt, note, rmnt, status)
			}
			var entries []control.Entry
			if err := json.Unmarshal([]byte(readFile(t, filepath.Join(env["WORK"], "status.json"))), &entries); err != nil {
				t.Fatalf("status --json: %v", err)
			}
			if len(entries) != 1 || entries[0].Mountpoint != mnt || entries[0].State != control.StateRunning {
				t.Errorf("the user's status --json: %+v, want %s running alone", entries, mnt)
			}
			if e := readFile(t, filepath.Join(env["WORK"], "status.err")); !strings.Contains(e, note) {
				t.Errorf("status --json says on stderr %q, want %q", e, note)
			}
			if s := readFile(t, filepath.Join(env["WORK"], "root-status.out")); !strings.Contains(s, mnt+": running (pid ") {
				t.Errorf("root's status of the user's mount:\n%s", s)
			}
			if s := readFile(t, filepath.Join(env["WORK"], "busy-umount.out")); !strings.Contains(s, mnt+" is busy") {
				t.Errorf("the user's umount of a busy mount:\n%s", s)
			}
			if s := readFile(t, filepath.Join(env["WORK"], "other-umount.out")); !strings.Contains(s, "mounted by uid 1000, and only root or that user may unmount it") {
				t.Errorf("another user's umount:\n%s", s)
			}
		})
	}
}

// newSockets returns the sockets of the lines "sockets running:" that are
// in neither "sockets before:" nor "sockets after:" of out: those made by
// the user's daemon and removed when it exited.
func newSockets(out string) []string {
	lists := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		for _, k := range []string{"before", "running", "after"} {
			if v, ok := strings.CutPrefix(line, "sockets "+k+":"); ok {
				lists[k] = strings.Fields(v)
			}
		}
	}
	var added []string
	for _, s := range lists["running"] {
		if !slices.Contains(lists["before"], s) && !slices.Contains(lists["after"], s) {
			added = append(added, s)
		}
	}
	return added
}

// userNoFuseScript mounts as the user where /dev/fuse is the machine's
// 0600 node (bound over whatever the machine has), then, with /dev/fuse
// open to users, where fusermount3 is missing (an empty file bound over
// it); through the command and through the mount helper. A view mounted
// before fusermount3 went missing cannot be unmounted by the user then,
// and can once it is back.
const userNoFuseScript = `
ln -s "$BIN" "$WORK/mount.fuse.sievefs"
mknod "$WORK/closed" c 10 229 && chmod 600 "$WORK/closed" && mount --bind "$WORK/closed" /dev/fuse
as_user "$BIN" mount "$LOW" "$MNT" >"$WORK/closed.out" 2>&1
echo "closed: mount exit $?"
as_user "$WORK/mount.fuse.sievefs" "$LOW" "$MNT" >"$WORK/closed-helper.out" 2>&1
echo "closed: helper exit $?"
grep -q " $MNT " /proc/self/mounts && echo "closed: mounted" || echo "closed: nothing mounted"
umount /dev/fuse
open_fuse || exit 1
setpriv --reuid=1000 --regid=1000 --clear-groups env -u XDG_RUNTIME_DIR "$BIN" mount "$LOW" "$MNT" >"$WORK/user.log" 2>&1 &
upid=$!
pids="$pids $upid"
wait_mounted "$MNT" || exit 1
: >"$WORK/nofm"
hidden=""
for f in $(command -v fusermount3 fusermount) /bin/fusermount3 /bin/fusermount; do
	[ -e "$f" ] && mount --bind "$WORK/nofm" "$f" && hidden="$f $hidden"
done
mkdir "$WORK/mnt2" && chown 1000:1000 "$WORK/mnt2"
as_user "$BIN" mount "$LOW" "$WORK/mnt2" >"$WORK/nofm.out" 2>&1
echo "no fusermount3: mount exit $?"
as_user "$BIN" umount "$MNT" >"$WORK/nofm-umount.out" 2>&1
echo "no fusermount3: umount exit $?"
for f in $hidden; do umount "$f"; done
as_user "$BIN" umount "$MNT"
echo "fusermount3 back: umount exit $?"
wait_exit $upid
echo "user daemon exit $?"
`

// TestUserNoFuse: a user who may not open /dev/fuse (fusermount3 opens it
// with the user's rights) gets exit code 7 and a message that says so,
// from the command and from the mount helper; so does a user without
// fusermount3, and umount says why it cannot unmount without it.
func TestUserNoFuse(t *testing.T) {
	env := userWork(t)
	out := runUserScript(t, env, userNoFuseScript)
	for _, want := range []string{"closed: mount exit 7", "closed: helper exit 7", "closed: nothing mounted",
		"no fusermount3: mount exit 7", "no fusermount3: umount exit 1",
		"fusermount3 back: umount exit 0", "user daemon exit 0"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("output lacks %q", want)
		}
	}
	closed := "uid 1000 may not open /dev/fuse (mode 0600, owner uid 0, group 0): fusermount3 opens it with the mounting user's rights"
	for _, f := range []string{"closed.out", "closed-helper.out"} {
		if s := readFile(t, filepath.Join(env["WORK"], f)); !strings.Contains(s, closed) || strings.Contains(s, "fusermount exited") {
			t.Errorf("%s: want %q:\n%s", f, closed, s)
		}
	}
	missing := "fusermount3 is not installed (Debian package fuse3)"
	if s := readFile(t, filepath.Join(env["WORK"], "nofm.out")); !strings.Contains(s, "FUSE is not available") || !strings.Contains(s, missing) {
		t.Errorf("mount without fusermount3: want %q:\n%s", missing, s)
	}
	if s := readFile(t, filepath.Join(env["WORK"], "nofm-umount.out")); !strings.Contains(s, "umount(2) needs root, and "+missing) {
		t.Errorf("umount without fusermount3: want %q:\n%s", missing, s)
	}
}

// readFile returns the content of path.
func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}
