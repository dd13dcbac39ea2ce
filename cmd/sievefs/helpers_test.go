package main

// Helpers for the tests of the sievefs command: the binary built once per
// test run, run as a child, and checks of the mount table.

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sievefs/sievefs/internal/fusetest"
	"golang.org/x/sys/unix"
)

// TestMain removes the binary built for the tests. Run with dialEnv set
// (as another user, by TestMetricsUnixSocket), it only connects to a socket.
func TestMain(m *testing.M) {
	if sock := os.Getenv(dialEnv); sock != "" {
		os.Exit(dialUnix(sock))
	}
	code := m.Run()
	fusetest.RemoveBinary()
	os.Exit(code)
}

// binary builds the sievefs command once per test run and returns its path.
func binary(t testing.TB) string { return fusetest.Binary(t) }

// requireFuse skips the test unless it runs as root with /dev/fuse.
func requireFuse(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount FUSE")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("no /dev/fuse")
	}
}

// syncBuffer is a bytes.Buffer safe for a child's output and the test.
type syncBuffer = fusetest.SyncBuffer

// result is how a run of the binary ended.
type result struct {
	code           int
	stdout, stderr string
}

// runBinary runs the binary with args to completion (at most 20 seconds).
// If it does not exit, it is terminated, whatever it mounted is detached
// and the test fails.
func runBinary(t *testing.T, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Signal(syscall.SIGTERM)
		<-done
		if n := len(args); n >= 2 && mountedOn(args[n-1]) {
			unix.Unmount(args[n-1], unix.MNT_DETACH)
		}
		t.Fatalf("sievefs %q did not exit within 20s; stderr:\n%s", args, stderr.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return result{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
}

// daemon is a running `sievefs mount`.
type daemon = fusetest.Daemon

// startMount runs `sievefs mount lower mnt` and waits until the mount
// appears. Cleanup always resumes, terminates and reaps the daemon, and
// detaches the mount if it is still there.
func startMount(t *testing.T, lower, mnt string) *daemon {
	t.Helper()
	return fusetest.StartDaemon(t, exec.Command(binary(t), "mount", lower, mnt), mnt,
		func() bool { return sievefsMountedOn(mnt) },
		func(t testing.TB) {
			if mountedOn(mnt) {
				t.Errorf("%s still mounted after the daemon exited; detaching it", mnt)
				unix.Unmount(mnt, unix.MNT_DETACH)
			}
		})
}

// mount is one line of /proc/self/mountinfo.
type mount = fusetest.MountEntry

func mounts() []mount { return fusetest.Mounts() }

// mountedOn reports whether anything is mounted on path.
func mountedOn(path string) bool {
	for _, m := range mounts() {
		if m.Point == path {
			return true
		}
	}
	return false
}

// sievefsMountedOn reports whether a sievefs view is mounted on path.
func sievefsMountedOn(path string) bool {
	for _, m := range mounts() {
		if m.Point == path && m.FSType == "fuse.sievefs" {
			return true
		}
	}
	return false
}

// sievefsMountsUnder lists the sievefs mounts whose mountpoint or lower
// directory lies under dir.
func sievefsMountsUnder(dir string) []mount {
	var out []mount
	for _, m := range mounts() {
		if m.FSType != "fuse.sievefs" {
			continue
		}
		if strings.HasPrefix(m.Point+"/", dir+"/") || strings.HasPrefix(m.Source+"/", dir+"/") {
			out = append(out, m)
		}
	}
	return out
}
