package control

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// request is what a client sends, as one JSON line.
type request struct {
	Cmd string `json:"cmd"`
}

// errorReply is the answer to a request the daemon refuses.
type errorReply struct {
	Error string `json:"error"`
}

// connTimeout bounds how long one connection may take.
const connTimeout = 5 * time.Second

// Server answers status requests on a control socket until Close.
type Server struct {
	path   string
	ln     *net.UnixListener
	sock   unix.Stat_t // the socket file made by Listen, to remove only it
	status func() Status
	uid    int // the daemon's user, which may ask besides root

	closeOnce sync.Once
	wg        sync.WaitGroup
}

// Listen makes the control socket at path, replacing any socket left there
// by a daemon that died, and answers each status request with status() until
// Close. The directory of path is created 0700 if need be and must belong to
// the daemon's user; the socket is 0600.
func Listen(path string, status func() Status) (*Server, error) {
	if err := makeDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	// Bind a temporary name and rename it into place once listening, so
	// that the socket at path never refuses connections while it starts
	// (a client removes a socket that refuses them as stale).
	tmp := fmt.Sprintf("%s.%d", path, os.Getpid())
	os.Remove(tmp)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	ln.SetUnlinkOnClose(false)
	fail := func(err error) (*Server, error) {
		ln.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("control socket %s: %w", path, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	s := &Server{path: path, ln: ln, status: status, uid: os.Geteuid()}
	if err := unix.Lstat(path, &s.sock); err != nil {
		return fail(err)
	}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Close stops answering, waits for the requests in progress and removes the
// socket (unless another daemon has replaced it since).
func (s *Server) Close() error {
	var err error
	s.closeOnce.Do(func() {
		err = s.ln.Close()
		s.wg.Wait()
		var st unix.Stat_t
		if unix.Lstat(s.path, &st) == nil && st.Dev == s.sock.Dev && st.Ino == s.sock.Ino {
			if rerr := os.Remove(s.path); rerr != nil && err == nil {
				err = rerr
			}
		}
	})
	return err
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptUnix()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: try again
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			s.handle(c)
		}()
	}
}

// handle answers one connection: reads one request line, checks the peer and
// writes one reply line. The request is read before a refusal is written, so
// that the refused client, still writing, gets the refusal rather than EPIPE.
func (s *Server) handle(c *net.UnixConn) {
	c.SetDeadline(time.Now().Add(connTimeout))
	enc := json.NewEncoder(c)
	line, err := bufio.NewReader(io.LimitReader(c, 4096)).ReadBytes('\n')
	if err != nil {
		return
	}
	uid, err := peerUID(c)
	if err != nil {
		enc.Encode(errorReply{Error: err.Error()})
		return
	}
	if uid != 0 && uid != s.uid {
		enc.Encode(errorReply{Error: fmt.Sprintf("permission denied: uid %d may not query this daemon (only root or uid %d)", uid, s.uid)})
		return
	}
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		enc.Encode(errorReply{Error: fmt.Sprintf("bad request: %v", err)})
		return
	}
	switch req.Cmd {
	case "status":
		enc.Encode(s.status())
	default:
		enc.Encode(errorReply{Error: fmt.Sprintf("unknown command %q", req.Cmd)})
	}
}

// peerUID returns the user id of the process at the other end of c.
func peerUID(c *net.UnixConn) (int, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, fmt.Errorf("peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, fmt.Errorf("peer credentials: %w", err)
	}
	if cerr != nil {
		return 0, fmt.Errorf("peer credentials: %w", cerr)
	}
	return int(cred.Uid), nil
}

// makeDir makes dir 0700 if it is missing, narrows it to 0700 if it is the
// daemon's and wider, and checks that it is a directory of the daemon's user
// that no one else can enter (checkDir).
func makeDir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("control socket directory: %w", err)
	}
	uid := os.Geteuid()
	var st unix.Stat_t
	if unix.Lstat(dir, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR && int(st.Uid) == uid && st.Mode&0o777 != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("control socket directory: %w", err)
		}
	}
	return checkDir(dir, uid)
}
