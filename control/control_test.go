package control

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sievefs/sievefs"
)

func TestSocketPath(t *testing.T) {
	for _, c := range []struct{ mnt, want string }{
		{"/mnt/view", "/run/sievefs/mnt-view.sock"},
		{"/mnt/my-view/", "/run/sievefs/mnt-my\\x2dview.sock"},
		{"/", "/run/sievefs/-.sock"},
		{"/srv/a b/.hidden", "/run/sievefs/srv-a\\x20b-.hidden.sock"},
	} {
		if got := SocketPath(c.mnt, 0); got != c.want {
			t.Errorf("SocketPath(%q) = %q, want %q", c.mnt, got, c.want)
		}
	}
	long := "/" + strings.Repeat("very-long-name/", 10)
	p := SocketPath(long, 0)
	if len(p) > maxSocketPath || !strings.HasPrefix(p, "/run/sievefs/sha256-") {
		t.Errorf("SocketPath of a long mountpoint = %q (%d bytes)", p, len(p))
	}
	if p2 := SocketPath(long+"x", 0); p2 == p {
		t.Errorf("two long mountpoints share the socket %s", p)
	}
}

// moveDirs puts the runtime directories and the /tmp of SocketDirs in a new
// temporary directory for the test, and returns them.
func moveDirs(t *testing.T) (runUser, tmp string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to give directories to other users")
	}
	base := t.TempDir()
	runUser, tmp = filepath.Join(base, "run-user"), filepath.Join(base, "tmp")
	for _, d := range []string{runUser, tmp} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	oldRun, oldTmp := runUserDir, tmpDir
	runUserDir, tmpDir = runUser, tmp
	t.Cleanup(func() { runUserDir, tmpDir = oldRun, oldTmp })
	return runUser, tmp
}

// userDir makes dir with mode, owned by uid.
func userDir(t *testing.T, dir string, mode os.FileMode, uid int) {
	t.Helper()
	if err := os.Mkdir(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, uid); err != nil {
		t.Fatal(err)
	}
}

// TestSocketDirs: a user's sockets go to /run/user/UID/sievefs only when
// /run/user/UID is that user's private directory, and to /tmp/sievefs-UID
// otherwise; the environment plays no part.
func TestSocketDirs(t *testing.T) {
	runUser, tmp := moveDirs(t)
	t.Setenv("XDG_RUNTIME_DIR", t.TempDir())
	const uid = 1000
	rt := filepath.Join(runUser, "1000")
	fallback := []string{filepath.Join(tmp, "sievefs-1000")}
	both := []string{filepath.Join(rt, "sievefs"), fallback[0]}
	for _, c := range []struct {
		name  string
		setup func(t *testing.T)
		want  []string
	}{
		{"no runtime directory", func(t *testing.T) {}, fallback},
		{"private runtime directory", func(t *testing.T) { userDir(t, rt, 0o700, uid) }, both},
		{"runtime directory open to others", func(t *testing.T) { userDir(t, rt, 0o755, uid) }, fallback},
		{"runtime directory of another user", func(t *testing.T) { userDir(t, rt, 0o700, uid+1) }, fallback},
		{"runtime directory a symlink", func(t *testing.T) {
			target := filepath.Join(t.TempDir(), "rt")
			userDir(t, target, 0o700, uid)
			if err := os.Symlink(target, rt); err != nil {
				t.Fatal(err)
			}
		}, fallback},
	} {
		t.Run(c.name, func(t *testing.T) {
			os.RemoveAll(rt)
			c.setup(t)
			got := SocketDirs(uid)
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Errorf("SocketDirs = %q, want %q", got, c.want)
			}
			if SocketDir(uid) != c.want[0] {
				t.Errorf("SocketDir = %q, want %q", SocketDir(uid), c.want[0])
			}
		})
	}
	if got := SocketDir(0); got != "/run/sievefs" {
		t.Errorf("root's SocketDir = %q", got)
	}
}

// TestLocate: clients find a daemon's socket in any of its user's socket
// directories, the preferred first, and refuse one in a directory that
// another user made.
func TestLocate(t *testing.T) {
	runUser, tmp := moveDirs(t)
	const uid, mnt = 1000, "/srv/v"
	rt := filepath.Join(runUser, "1000")
	userDir(t, rt, 0o700, uid)
	inRuntime, inTmp := filepath.Join(rt, "sievefs", "srv-v.sock"), filepath.Join(tmp, "sievefs-1000", "srv-v.sock")
	locate := func(want string) {
		t.Helper()
		if got, err := Locate(mnt, uid); err != nil || got != want {
			t.Errorf("Locate = %q, %v; want %q", got, err, want)
		}
	}
	locate(inRuntime) // no socket anywhere: where a daemon would make it
	// A daemon started before the runtime directory appeared.
	userDir(t, filepath.Dir(inTmp), 0o700, uid)
	writeFile(t, inTmp)
	locate(inTmp)
	userDir(t, filepath.Dir(inRuntime), 0o700, uid)
	writeFile(t, inRuntime)
	locate(inRuntime)

	// Someone else made /tmp/sievefs-1000: its socket is not trusted.
	os.RemoveAll(filepath.Dir(inRuntime))
	if err := os.Chown(filepath.Dir(inTmp), uid+1, uid+1); err != nil {
		t.Fatal(err)
	}
	if got, err := Locate(mnt, uid); err == nil || !strings.Contains(err.Error(), "belongs to uid 1001, not to uid 1000") {
		t.Errorf("Locate in another user's directory = %q, %v", got, err)
	}
}

// writeFile makes an empty file at path.
func writeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestListenDir: the daemon refuses a socket directory that is a symlink or
// belongs to another user, saying why, and narrows its own to 0700.
func TestListenDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory to another user")
	}
	base := t.TempDir()
	status := func() Status { return Status{PID: 4} }
	others := filepath.Join(base, "others")
	userDir(t, others, 0o700, 65534)
	if _, err := Listen(filepath.Join(others, "m.sock"), status); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534, not to uid 0") {
		t.Errorf("Listen in another user's directory: %v", err)
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(t.TempDir(), link); err != nil {
		t.Fatal(err)
	}
	if _, err := Listen(filepath.Join(link, "m.sock"), status); err == nil || !strings.Contains(err.Error(), "is a symlink") {
		t.Errorf("Listen in a symlinked directory: %v", err)
	}
	open := filepath.Join(base, "open")
	userDir(t, open, 0o755, 0)
	s, err := Listen(filepath.Join(open, "m.sock"), status)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if fi, err := os.Stat(open); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("own directory not narrowed to 0700: %v, %v", fi.Mode(), err)
	}
}

// listen starts a server on a socket in a new temporary directory.
func listen(t *testing.T) (*Server, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ctl", "m.sock")
	s, err := Listen(path, func() Status {
		return Status{Status: sievefs.Status{Mountpoint: "/mnt/x", BackingFiles: []sievefs.BackingFile{{ID: 7, Path: "/l/f", Opens: 2}}}, PID: 42, Policy: "/etc/p.yaml"}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestQuery(t *testing.T) {
	s, path := listen(t)
	st, err := Query(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.PID != 42 || st.Policy != "/etc/p.yaml" || st.Mountpoint != "/mnt/x" ||
		len(st.BackingFiles) != 1 || st.BackingFiles[0] != (sievefs.BackingFile{ID: 7, Path: "/l/f", Opens: 2}) {
		t.Errorf("status %+v", st)
	}
	for p, want := range map[string]os.FileMode{path: 0o600 | os.ModeSocket, filepath.Dir(path): 0o700 | os.ModeDir} {
		fi, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode(), want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket still there after Close: %v", err)
	}
	if _, err := Query(path); !errors.Is(err, ErrNoDaemon) {
		t.Errorf("query after Close: %v, want ErrNoDaemon", err)
	}
}

func TestUnknownCommand(t *testing.T) {
	_, path := listen(t)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintln(c, `{"cmd":"explode"}`)
	line, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.Contains(line, `"error":"unknown command \"explode\""`) {
		t.Errorf("reply %q", line)
	}
}

// staleSocket leaves a socket that nothing listens on at path.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
}

func TestStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stale.sock")
	staleSocket(t, path)
	if _, err := Query(path); !errors.Is(err, ErrNoDaemon) || !strings.Contains(err.Error(), "stale") {
		t.Errorf("query of a stale socket: %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale socket not removed: %v", err)
	}

	// Listen replaces a stale socket.
	staleSocket(t, path)
	s, err := Listen(path, func() Status { return Status{PID: 1} })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st, err := Query(path); err != nil || st.PID != 1 {
		t.Errorf("query after Listen over a stale socket: %+v, %v", st, err)
	}
}

// TestCloseKeepsReplacement: a daemon that stops does not remove the socket
// of a newer daemon of the same mountpoint.
func TestCloseKeepsReplacement(t *testing.T) {
	old, path := listen(t)
	s, err := Listen(path, func() Status { return Status{PID: 2} })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	old.Close()
	if st, err := Query(path); err != nil || st.PID != 2 {
		t.Errorf("query after the old daemon closed: %+v, %v", st, err)
	}
}

// TestPeerCredentials: with the socket's file permissions opened up, a
// client of another user still gets refused by the SO_PEERCRED check.
func TestPeerCredentials(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	base := t.TempDir()
	path := filepath.Join(base, "ctl", "m.sock")
	s, err := Listen(path, func() Status { return Status{PID: 3} })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Let uid 65534 reach the socket and run a copy of this test binary.
	for _, d := range []string{filepath.Dir(base), base, filepath.Dir(path)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "control.test")
	copyFile(t, bin)

	cmd := exec.Command(bin, "-test.run=^TestHelperClient$")
	cmd.Env = append(os.Environ(), "CONTROL_TEST_SOCKET="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client as uid 65534: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "refused: permission denied") || !strings.Contains(string(out), "uid 65534 may not query") {
		t.Errorf("client as uid 65534 was not refused by the daemon:\n%s", out)
	}
}

// TestHelperClient is the client that TestPeerCredentials runs as another
// user.
func TestHelperClient(t *testing.T) {
	path := os.Getenv("CONTROL_TEST_SOCKET")
	if path == "" {
		t.Skip("run by TestPeerCredentials")
	}
	st, err := Query(path)
	if errors.Is(err, ErrPermission) {
		fmt.Printf("refused: %v\n", err)
		return
	}
	t.Fatalf("not refused: %+v, %v", st, err)
}

// copyFile copies the running test binary to dst, executable by all.
func copyFile(t *testing.T, dst string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, src); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
