package main

// Tests of the operator commands on real mounts: status, umount, --recover,
// sd_notify readiness and the mount.fuse.sievefs helper.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs/control"

	"github.com/sievefs/sievefs/internal/fusetest"
)

// viewDirs makes base/lower, with a file "data.txt", and base/mnt.
func viewDirs(t *testing.T) (lower, mnt string) {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	lower, mnt = filepath.Join(base, "lower"), filepath.Join(base, "mnt")
	for _, d := range []string{lower, mnt} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(lower, "data.txt"), []byte("lower data"), 0o644); err != nil {
		t.Fatal(err)
	}
	return lower, mnt
}

// serving reports whether a live FUSE mount is on mnt.
func serving(mnt string) bool {
	var st unix.Statfs_t
	return unix.Statfs(mnt, &st) == nil && st.Type == unix.FUSE_SUPER_MAGIC
}

// startView runs the binary with args (a `mount …` that mounts on mnt) and
// extra environment, and waits until a live FUSE mount is on mnt and the
// daemon answers on its control socket, which it opens once MountView has
// returned. (The mount serves requests a little earlier, while go-fuse still
// holds a file open in it: a daemon killed then hangs in exit, flushing that
// file to itself.) Cleanup terminates and reaps it and detaches what it left
// mounted.
func startView(t *testing.T, mnt string, env []string, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), env...)
	return fusetest.StartDaemon(t, cmd, mnt,
		func() bool { return serving(mnt) && answers(mnt) },
		func(t testing.TB) { detachAll(t, mnt) })
}

// answers reports whether the daemon of the mount on mnt answers on its
// control socket.
func answers(mnt string) bool {
	_, err := control.Query(control.SocketPath(mnt, 0))
	return err == nil
}

// detachAll detaches whatever is still mounted on mnt, dead mounts included.
func detachAll(t testing.TB, mnt string) {
	for i := 0; i < 8 && mountedOn(mnt); i++ {
		unix.Unmount(mnt, unix.MNT_DETACH)
	}
}

// runAs runs the program at path with args to completion (at most 20 s),
// as the user of cred when it is not nil.
func runAs(t *testing.T, cred *syscall.Credential, path string, args ...string) result {
	t.Helper()
	cmd := exec.Command(path, args...)
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s %q did not return within 20s (holding its output open?); stderr:\n%s", path, args, stderr.String())
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// statusJSON runs `sievefs status --json args…` and decodes its output.
func statusJSON(t *testing.T, args ...string) ([]control.Entry, result) {
	t.Helper()
	r := runBinary(t, append([]string{"status", "--json"}, args...)...)
	var entries []control.Entry
	if err := json.Unmarshal([]byte(r.stdout), &entries); err != nil {
		t.Fatalf("status --json %q: %v; exit %d, stdout:\n%s\nstderr:\n%s", args, err, r.code, r.stdout, r.stderr)
	}
	return entries, r
}

// entryFor returns the entry of mnt.
func entryFor(entries []control.Entry, mnt string) *control.Entry {
	for i := range entries {
		if entries[i].Mountpoint == mnt {
			return &entries[i]
		}
	}
	return nil
}

func TestStatus(t *testing.T) {
	requireFuse(t)
	lower, mnt := viewDirs(t)
	d := startView(t, mnt, nil, "mount", lower, mnt)
	f, err := os.Open(filepath.Join(mnt, "data.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	// checkEntry checks the entry of this mount, with data.txt open once.
	checkEntry := func(t *testing.T, e *control.Entry) {
		t.Helper()
		if e == nil {
			t.Fatal("mount not listed")
		}
		if e.State != control.StateRunning || e.Status == nil {
			t.Fatalf("state %q (%s), want running", e.State, e.Error)
		}
		if e.PID != d.Cmd.Process.Pid || e.Lower != lower || e.Mountpoint != mnt {
			t.Errorf("pid %d lower %s mountpoint %s, want %d %s %s", e.PID, e.Lower, e.Mountpoint, d.Cmd.Process.Pid, lower, mnt)
		}
		if !e.Passthrough.Active {
			t.Skipf("passthrough unavailable here (%s): no backing files to list", e.Passthrough.Reason)
		}
		if len(e.BackingFiles) != 1 || e.BackingFiles[0].Opens != 1 ||
			!strings.HasSuffix(e.BackingFiles[0].Path, "/data.txt") || e.BackingFiles[0].ID <= 0 {
			t.Errorf("backing files %+v, want data.txt with 1 open", e.BackingFiles)
		}
		if e.OpenFiles.Passthrough != 1 || e.Counters.BackingRegistered != 1 {
			t.Errorf("open files %+v, counters %+v", e.OpenFiles, e.Counters)
		}
	}

	t.Run("JSON", func(t *testing.T) {
		entries, _ := statusJSON(t)
		checkEntry(t, entryFor(entries, mnt))
	})
	t.Run("JSONOne", func(t *testing.T) {
		entries, r := statusJSON(t, mnt)
		if r.code != exitOK || len(entries) != 1 {
			t.Fatalf("exit %d, %d entries, want 0 and 1; stderr:\n%s", r.code, len(entries), r.stderr)
		}
		checkEntry(t, &entries[0])
	})
	t.Run("JSONKeys", func(t *testing.T) {
		// The documented keys, read without the Go types.
		r := runBinary(t, "status", "--json", mnt)
		var raw []map[string]any
		if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil || len(raw) != 1 {
			t.Fatalf("%v: %s", err, r.stdout)
		}
		for _, k := range []string{"mountpoint", "lower", "state", "pid", "passthrough", "open_files", "backing_files", "counters"} {
			if _, ok := raw[0][k]; !ok {
				t.Errorf("key %q missing: %s", k, r.stdout)
			}
		}
		pt, _ := raw[0]["passthrough"].(map[string]any)
		for _, k := range []string{"mode", "active", "max_backing"} {
			if _, ok := pt[k]; !ok {
				t.Errorf("passthrough.%s missing: %s", k, r.stdout)
			}
		}
		counters, _ := raw[0]["counters"].(map[string]any)
		for _, k := range []string{"inodes", "inode_fds", "backing_registered", "backing_shared", "backing_over_budget",
			"backing_refused", "daemon_served_opens", "daemon_reads", "daemon_writes"} {
			if _, ok := counters[k]; !ok {
				t.Errorf("counters.%s missing: %s", k, r.stdout)
			}
		}
		if bf, _ := raw[0]["backing_files"].([]any); len(bf) == 1 {
			b, _ := bf[0].(map[string]any)
			for _, k := range []string{"id", "path", "opens"} {
				if _, ok := b[k]; !ok {
					t.Errorf("backing_files[0].%s missing: %s", k, r.stdout)
				}
			}
		}
	})
	t.Run("Text", func(t *testing.T) {
		for _, args := range [][]string{{"status"}, {"status", mnt}} {
			r := runBinary(t, args...)
			for _, w := range []string{
				mnt + ": running (pid " + strconv.Itoa(d.Cmd.Process.Pid) + ")",
				"lower          " + lower,
				"passthrough    active",
				"open files     1 passthrough, 0 daemon-served",
				"backing_registered=1",
				"ID  OPENS  PATH",
				"1  " + filepath.Join(lower, "data.txt"),
			} {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("%q: output lacks %q:\n%s", args, w, r.stdout)
				}
			}
			if len(args) == 2 && r.code != exitOK {
				t.Errorf("%q: exit %d; stderr:\n%s", args, r.code, r.stderr)
			}
		}
	})
	t.Run("NotSievefs", func(t *testing.T) {
		dir := t.TempDir()
		for _, cmd := range []string{"status", "umount"} {
			r := runBinary(t, cmd, dir)
			if r.code != exitFailure || !strings.Contains(r.stderr, dir+" is not a sievefs mount") {
				t.Errorf("%s on a plain directory: exit %d, stderr:\n%s", cmd, r.code, r.stderr)
			}
		}
	})
	t.Run("DaemonStopped", func(t *testing.T) {
		// A daemon that does not answer makes status wait, not hang.
		lower, mnt := viewDirs(t)
		d := startView(t, mnt, nil, "mount", lower, mnt)
		d.Cmd.Process.Signal(syscall.SIGSTOP)
		defer d.Cmd.Process.Signal(syscall.SIGCONT)
		r := runBinary(t, "status", mnt)
		if r.code != exitFailure || !strings.Contains(r.stderr, "unreachable") || !strings.Contains(r.stderr, "did not answer") {
			t.Errorf("status of a stopped daemon: exit %d; stderr:\n%s", r.code, r.stderr)
		}
	})
	t.Run("OtherUserRefused", func(t *testing.T) {
		// Let uid 65534 run the binary; the mount stays out of its reach.
		if err := os.Chmod(filepath.Dir(binary(t)), 0o755); err != nil {
			t.Fatal(err)
		}
		r := runAs(t, &syscall.Credential{Uid: 65534, Gid: 65534}, binary(t), "status", mnt)
		if r.code != exitFailure {
			t.Errorf("exit %d, want %d; stdout:\n%s", r.code, exitFailure, r.stdout)
		}
		if !strings.Contains(r.stderr, "permission denied: only root or the mounting user may query the daemon") {
			t.Errorf("stderr does not say why:\n%s", r.stderr)
		}
		if strings.Contains(r.stdout, "data.txt") {
			t.Errorf("another user saw the backing files:\n%s", r.stdout)
		}
	})
}

func TestUmount(t *testing.T) {
	requireFuse(t)
	t.Run("WaitsForDaemon", func(t *testing.T) {
		lower, mnt := viewDirs(t)
		d := startView(t, mnt, nil, "mount", lower, mnt)
		r := runBinary(t, "umount", mnt)
		if r.code != exitOK {
			t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
		}
		// The daemon has exited by the time umount returns: only the
		// test's reaping of it remains.
		if code := d.Wait(t, 2*time.Second); code != exitOK {
			t.Errorf("daemon exit code %d; stderr:\n%s", code, d.Stderr)
		}
		if mountedOn(mnt) {
			t.Error("still mounted")
		}
		if _, err := os.Lstat(control.SocketPath(mnt, 0)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("control socket left behind: %v", err)
		}
	})
	t.Run("Busy", func(t *testing.T) {
		lower, mnt := viewDirs(t)
		d := startView(t, mnt, nil, "mount", lower, mnt)
		f, err := os.Open(filepath.Join(mnt, "data.txt"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r := runBinary(t, "umount", mnt)
		if r.code != exitFailure || !strings.Contains(r.stderr, "is busy") || !strings.Contains(r.stderr, "--lazy") {
			t.Errorf("umount of a busy mount: exit %d, stderr:\n%s", r.code, r.stderr)
		}
		if !serving(mnt) {
			t.Fatal("a failed umount unmounted")
		}
		// --lazy detaches at once and waits until the daemon exits, which
		// it does when the last open file is closed.
		go func() {
			time.Sleep(300 * time.Millisecond)
			f.Close()
		}()
		start := time.Now()
		r = runBinary(t, "umount", "--lazy", mnt)
		if r.code != exitOK {
			t.Fatalf("umount --lazy: exit %d; stderr:\n%s", r.code, r.stderr)
		}
		if took := time.Since(start); took < 250*time.Millisecond {
			t.Errorf("umount --lazy returned after %v, before the file was closed", took)
		}
		if code := d.Wait(t, 2*time.Second); code != exitOK {
			t.Errorf("daemon exit code %d; stderr:\n%s", code, d.Stderr)
		}
	})
}

// deadMount mounts a view, SIGKILLs its daemon and returns the dead mount.
func deadMount(t *testing.T) (lower, mnt string) {
	t.Helper()
	lower, mnt = viewDirs(t)
	d := startView(t, mnt, nil, "mount", lower, mnt)
	d.Cmd.Process.Kill()
	d.Wait(t, 5*time.Second)
	t.Cleanup(func() { os.Remove(control.SocketPath(mnt, 0)) }) // left by the killed daemon
	if !control.Dead(mnt) {
		t.Fatalf("%s is not a dead mount after SIGKILL of its daemon", mnt)
	}
	// stat answers from the kernel's attribute cache for a while (1 s for
	// the root with --cache auto).
	var st unix.Stat_t
	for deadline := time.Now().Add(5 * time.Second); unix.Stat(mnt, &st) != unix.ENOTCONN; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("stat of the dead mount %s does not fail with ENOTCONN", mnt)
		}
	}
	return lower, mnt
}

func TestDeadMount(t *testing.T) {
	requireFuse(t)
	t.Run("Status", func(t *testing.T) {
		_, mnt := deadMount(t)
		sock := control.SocketPath(mnt, 0)
		if _, err := os.Lstat(sock); err != nil {
			t.Fatalf("the killed daemon left no socket to clean up: %v", err)
		}
		entries, r := statusJSON(t, mnt)
		if r.code != exitFailure || len(entries) != 1 || entries[0].State != control.StateDead {
			t.Errorf("status of a dead mount: exit %d, %+v; stderr:\n%s", r.code, entries, r.stderr)
		}
		if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stale socket not removed by status: %v", err)
		}
		r = runBinary(t, "status")
		if !strings.Contains(r.stdout, mnt+": dead") || !strings.Contains(r.stdout, "--recover") {
			t.Errorf("status does not show the dead mount:\n%s", r.stdout)
		}
	})
	t.Run("MountRefused", func(t *testing.T) {
		lower, mnt := deadMount(t)
		r := runBinary(t, "mount", lower, mnt)
		if r.code != exitDeadMount || !strings.Contains(r.stderr, "--recover") {
			t.Errorf("exit %d, want %d with a hint at --recover; stderr:\n%s", r.code, exitDeadMount, r.stderr)
		}
	})
	t.Run("Recover", func(t *testing.T) {
		lower, mnt := deadMount(t)
		d := startView(t, mnt, nil, "mount", "--recover", lower, mnt)
		if b, err := os.ReadFile(filepath.Join(mnt, "data.txt")); err != nil || string(b) != "lower data" {
			t.Errorf("read through the recovered mount: %q, %v", b, err)
		}
		if !strings.Contains(d.Stderr.String(), "detached a dead FUSE mount") {
			t.Errorf("log does not say it detached the dead mount:\n%s", d.Stderr)
		}
		if r := runBinary(t, "umount", mnt); r.code != exitOK {
			t.Fatalf("umount: exit %d; stderr:\n%s", r.code, r.stderr)
		}
		d.Wait(t, 2*time.Second)
		if mountedOn(mnt) {
			t.Errorf("something still mounted on %s after umount: the dead mount was not detached", mnt)
		}
	})
	t.Run("Umount", func(t *testing.T) {
		_, mnt := deadMount(t)
		if r := runBinary(t, "umount", mnt); r.code != exitOK {
			t.Errorf("umount of a dead mount: exit %d; stderr:\n%s", r.code, r.stderr)
		}
		if mountedOn(mnt) {
			t.Error("dead mount still there")
		}
	})
}

func TestSdNotify(t *testing.T) {
	requireFuse(t)
	for _, name := range []string{"Path", "Abstract"} {
		t.Run(name, func(t *testing.T) {
			addr := filepath.Join(t.TempDir(), "notify")
			if name == "Abstract" {
				addr = fmt.Sprintf("@sievefs-test-%d-%d", os.Getpid(), time.Now().UnixNano())
			}
			conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			recv := func(want string) {
				t.Helper()
				conn.SetReadDeadline(time.Now().Add(10 * time.Second))
				buf := make([]byte, 4096)
				n, err := conn.Read(buf)
				if err != nil {
					t.Fatalf("waiting for %s: %v", want, err)
				}
				if !strings.Contains("\n"+string(buf[:n])+"\n", "\n"+want+"\n") {
					t.Fatalf("got %q, want %s", buf[:n], want)
				}
			}
			lower, mnt := viewDirs(t)
			cmd := exec.Command(binary(t), "mount", lower, mnt)
			cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+addr)
			var stderr syncBuffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				cmd.Process.Kill()
				cmd.Wait()
				detachAll(t, mnt)
			}()
			recv("READY=1")
			// Ready means mounted.
			if b, err := os.ReadFile(filepath.Join(mnt, "data.txt")); err != nil || string(b) != "lower data" {
				t.Errorf("read right after READY=1: %q, %v", b, err)
			}
			cmd.Process.Signal(syscall.SIGTERM)
			recv("STOPPING=1")
			if err := cmd.Wait(); err != nil {
				t.Errorf("daemon: %v; stderr:\n%s", err, stderr.String())
			}
		})
	}
}

func TestMountHelper(t *testing.T) {
	requireFuse(t)
	prefix := t.TempDir()
	r := runBinary(t, "install-helper", "--prefix", prefix, "--mandir", "")
	if r.code != exitOK {
		t.Fatalf("install-helper: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	helper := filepath.Join(prefix, "mount.fuse.sievefs")
	if target, err := os.Readlink(helper); err != nil || target != binary(t) {
		t.Fatalf("helper links to %q (%v), want %s", target, err, binary(t))
	}
	if r := runBinary(t, "install-helper", "--prefix", prefix, "--mandir", ""); r.code != exitOK {
		t.Errorf("installing over the helper again: exit %d; stderr:\n%s", r.code, r.stderr)
	}

	t.Run("Mounts", func(t *testing.T) {
		lower, mnt := viewDirs(t)
		t.Cleanup(func() { cleanupDaemonOf(t, mnt) })
		// As mount(8) runs it for an fstab line.
		r := runAs(t, nil, helper, lower, mnt, "-o", "rw,nosuid,nodev,noexec,relatime,allow_other,x-systemd.automount")
		if r.code != exitOK {
			t.Fatalf("helper: exit %d; stderr:\n%s", r.code, r.stderr)
		}
		// Mounted by the time the helper returns.
		if !serving(mnt) {
			t.Fatal("not mounted when the helper returned")
		}
		time.Sleep(200 * time.Millisecond)
		if b, err := os.ReadFile(filepath.Join(mnt, "data.txt")); err != nil || string(b) != "lower data" {
			t.Errorf("read after the helper exited: %q, %v", b, err)
		}
		entries, _ := statusJSON(t, mnt)
		if len(entries) != 1 || entries[0].State != control.StateRunning {
			t.Fatalf("status: %+v", entries)
		}
		pid := entries[0].PID
		if sid, err := unix.Getsid(pid); err != nil || sid != pid {
			t.Errorf("daemon %d is not a session leader (sid %d, %v)", pid, sid, err)
		}
		if r := runBinary(t, "umount", mnt); r.code != exitOK {
			t.Fatalf("umount: exit %d; stderr:\n%s", r.code, r.stderr)
		}
		if alive(pid) {
			t.Errorf("daemon %d still running after umount", pid)
		}
	})
	t.Run("LogFile", func(t *testing.T) {
		lower, mnt := viewDirs(t)
		t.Cleanup(func() { cleanupDaemonOf(t, mnt) })
		log := filepath.Join(t.TempDir(), "sievefs.log")
		r := runAs(t, nil, helper, lower, mnt, "-o", "log_file="+log)
		if r.code != exitOK {
			t.Fatalf("helper: exit %d; stderr:\n%s", r.code, r.stderr)
		}
		if r := runBinary(t, "umount", mnt); r.code != exitOK {
			t.Fatalf("umount: exit %d; stderr:\n%s", r.code, r.stderr)
		}
		b, _ := os.ReadFile(log)
		if !strings.Contains(string(b), "msg=mounted") || !strings.Contains(string(b), "unmounted from outside") {
			t.Errorf("log file:\n%s", b)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		lower, mnt := viewDirs(t)
		t.Cleanup(func() { cleanupDaemonOf(t, mnt) })
		for _, c := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{lower + "-missing", mnt, "-o", "rw"}, exitBadLower, "bad lower directory"},
			{[]string{lower, mnt, "-o", "rw,bogus"}, exitUsage, `unknown mount option "bogus"`},
			{[]string{lower}, exitUsage, "usage: mount.fuse.sievefs"},
		} {
			r := runAs(t, nil, helper, c.args...)
			if r.code != c.code || !strings.Contains(r.stderr, c.want) {
				t.Errorf("%q: exit %d, want %d with %q; stderr:\n%s", c.args, r.code, c.code, c.want, r.stderr)
			}
		}
		if mountedOn(mnt) {
			t.Error("mounted after a failed helper")
		}
	})
	t.Run("RefusesToReplaceFile", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "mount.fuse.sievefs"), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		r := runBinary(t, "install-helper", "--prefix", dir, "--mandir", "")
		if r.code != exitFailure || !strings.Contains(r.stderr, "not a symlink") {
			t.Errorf("exit %d; stderr:\n%s", r.code, r.stderr)
		}
	})
}

// alive reports whether process pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// cleanupDaemonOf stops the daemon serving mnt (not a child of the test)
// and detaches what is left.
func cleanupDaemonOf(t *testing.T, mnt string) {
	if !mountedOn(mnt) {
		return
	}
	t.Errorf("%s still mounted; unmounting it", mnt)
	st, err := control.Query(control.SocketPath(mnt, 0))
	detachAll(t, mnt)
	if err == nil && alive(st.PID) {
		syscall.Kill(st.PID, syscall.SIGKILL)
	}
}

// TestSystemdUnit checks contrib/sievefs@.service with systemd-analyze,
// pointed at the binary under test.
func TestSystemdUnit(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("no systemd-analyze")
	}
	unit, err := os.ReadFile("../../contrib/sievefs@.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"Type=notify", "ExecStart=/usr/local/bin/sievefs mount ", "ExecReload=/bin/kill -HUP $MAINPID", "KillMode=mixed", "TimeoutStopSec="} {
		if !strings.Contains(string(unit), w) {
			t.Errorf("unit lacks %q", w)
		}
	}
	dir := t.TempDir()
	env := filepath.Join(dir, "mnt-view.env")
	if err := os.WriteFile(env, []byte("SIEVEFS_LOWER=/srv/data\nSIEVEFS_OPTIONS=-o allow_other\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer("/usr/local/bin/sievefs", binary(t), "/etc/sievefs/%i.env", filepath.Join(dir, "%i.env")).Replace(string(unit))
	path := filepath.Join(dir, "sievefs@mnt-view.service")
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestMountOptionsFromFstab: the options an fstab line may carry for other
// tools are ignored, and the new flags work as -o options.
func TestMountOptionsFromFstab(t *testing.T) {
	var cfg mountConfig
	f := newMountFlags(&cfg, io.Discard)
	err := applyMountOptions(f, &cfg, "rw,nofail,comment=systemd.automount,x-systemd.requires=a.mount,X-mount.mkdir,recover,log_file=/var/log/v.log")
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.recover || cfg.logFile != "/var/log/v.log" {
		t.Errorf("recover %v, log file %q", cfg.recover, cfg.logFile)
	}
}
