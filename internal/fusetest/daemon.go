package fusetest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sievefs/sievefs/control"
)

// Daemon is a sievefs process a test started (see StartDaemon).
type Daemon struct {
	Cmd    *exec.Cmd
	Mnt    string
	Stderr *SyncBuffer
	Exited chan struct{} // closed when the process has been waited for
	Err    error         // what Wait returned, once Exited is closed

	detach func(testing.TB)
}

// StartDaemon starts cmd, which mounts on mnt, capturing its stderr, and
// waits up to 10 s until ready reports true. Cleanup always runs Stop.
// detach removes what the daemon left mounted, after it exited.
func StartDaemon(t *testing.T, cmd *exec.Cmd, mnt string, ready func() bool, detach func(testing.TB)) *Daemon {
	t.Helper()
	d := &Daemon{Cmd: cmd, Mnt: mnt, Stderr: &SyncBuffer{}, Exited: make(chan struct{}), detach: detach}
	d.Cmd.Stderr = d.Stderr
	if err := d.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		d.Err = d.Cmd.Wait()
		close(d.Exited)
	}()
	t.Cleanup(func() { d.Stop(t) })
	deadline := time.Now().Add(10 * time.Second)
	for !ready() {
		select {
		case <-d.Exited:
			t.Fatalf("sievefs exited before mounting (%v); stderr:\n%s", d.Err, d.Stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sievefs mount ready on %s after 10s; stderr:\n%s", mnt, d.Stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return d
}

// Signal sends sig to the daemon unless it has exited.
func (d *Daemon) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := d.Cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("signal %v: %v", sig, err)
	}
}

// Wait waits up to timeout for the daemon to exit and returns its exit code.
func (d *Daemon) Wait(t testing.TB, timeout time.Duration) int {
	t.Helper()
	select {
	case <-d.Exited:
	case <-time.After(timeout):
		t.Fatalf("sievefs did not exit within %v; stderr:\n%s", timeout, d.Stderr)
	}
	var ee *exec.ExitError
	if d.Err != nil && !errors.As(d.Err, &ee) {
		t.Fatalf("wait: %v", d.Err)
	}
	return d.Cmd.ProcessState.ExitCode()
}

// Stop resumes and terminates the daemon (killing it after 10 s), reaps it,
// detaches what it left mounted and removes the control socket a daemon
// killed by the test (SIGKILL) could not remove itself.
func (d *Daemon) Stop(t testing.TB) {
	select {
	case <-d.Exited:
	default:
		d.Cmd.Process.Signal(syscall.SIGCONT)
		d.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-d.Exited:
		case <-time.After(10 * time.Second):
			t.Errorf("sievefs ignored SIGTERM for 10s, killing it; stderr:\n%s", d.Stderr)
			d.Cmd.Process.Kill()
			<-d.Exited
		}
	}
	d.detach(t)
	if mnt, err := filepath.EvalSymlinks(d.Mnt); err == nil {
		control.RemoveStale(control.SocketPath(mnt, os.Geteuid()))
	}
}

// UserSockets cleans up after the daemons that uid runs in a test: at
// cleanup it removes the control sockets they left for the mounts on mnts
// (a daemon killed cannot remove its own) and, once empty, the socket
// directories of uid that were not there before.
func UserSockets(t testing.TB, uid int, mnts ...string) {
	var fresh []string
	for _, d := range control.SocketDirs(uid) {
		if _, err := os.Lstat(d); errors.Is(err, os.ErrNotExist) {
			fresh = append(fresh, d)
		}
	}
	t.Cleanup(func() {
		for _, mnt := range mnts {
			if p, err := control.Locate(mnt, uid); err == nil {
				control.RemoveStale(p)
			}
		}
		for _, d := range fresh {
			os.Remove(d)
		}
	})
}
