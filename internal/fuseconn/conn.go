// Package fuseconn serves a FUSE connection through go-fuse's
// fuse.ProtocolServer on a /dev/fuse descriptor it owns, instead of
// go-fuse's fuse.Server loop: it mounts, reads requests, writes replies and
// notifications, and registers passthrough backing files itself. Every
// system call on the connection (open, mount, read, write, ioctl, umount)
// is in this package, each retried on EINTR.
//
// It is the base for transports that go-fuse does not offer (a connection
// handed over to a successor process, FUSE over io_uring); on its own it
// serves the same file systems as fuse.Server, with the same RawFileSystem.
//
// A process running as root mounts with mount(2); another user's through
// fusermount3, which hands the descriptor over (_FUSE_COMMFD).
package fuseconn

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs/internal/fusermount"
)

// Opcodes of the kernel's FUSE protocol (include/uapi/linux/fuse.h) that the
// loop treats apart; go-fuse keeps its own unexported.
const (
	opForget      = 2
	opInit        = 26
	opBatchForget = 42
)

// headerRoom is the room a read buffer keeps for the request headers in
// front of a WRITE's data (a page, as go-fuse's buffers do).
const headerRoom = 4096

// Conn is a mounted FUSE connection served through fuse.ProtocolServer. Its
// methods may be called from any goroutine.
type Conn struct {
	mountpoint string
	direct     bool // mounted with mount(2), not through fusermount3
	fs         fuse.RawFileSystem
	ps         *fuse.ProtocolServer
	logger     *log.Logger
	debug      bool

	// file owns the /dev/fuse descriptor; system calls run through raw, which
	// holds a reference on it, so that a close while a reader is blocked
	// waits for it and the number is never reused under a call.
	file *os.File
	raw  syscall.RawConn

	settings fuse.InitIn // what the kernel offered at INIT
	flags    uint64      // the capabilities negotiated at INIT
	maxWrite uint32      // max_write and max_pages negotiated at INIT
	maxPages uint16

	// rings are the queues of FUSE over io_uring (MountURing), served
	// from ringFd, each by a goroutine counted in ringLoops, once serving
	// is closed (by Serve).
	rings      []*ringQueue
	ringFd     int
	ringLoops  sync.WaitGroup
	serving    chan struct{}
	ringsOver  atomic.Bool   // the connection is over: the loops stop
	ringServed atomic.Uint64 // requests served through the rings

	bufSize int       // size of every request and reply buffer
	bufs    sync.Pool // *[]byte of bufSize
	// mu guards idle, the readers blocked in read(2).
	mu         sync.Mutex
	idle       int
	maxReaders int
	readers    sync.WaitGroup
}

// Mount mounts a FUSE file system served by fs on mountpoint, as go-fuse
// does with opts (FsName, Name, AllowOther, MaxWrite, DirectMountFlags,
// Options): with mount(2) as root, through fusermount3 otherwise. It answers the kernel's INIT through
// fuse.ProtocolServer, which negotiates the capabilities opts asks for.
// Unlike fuse.NewServer it does not call fs.Init: the caller attaches what
// needs the connection, then calls Serve, then WaitMount. Nothing is left
// mounted when it returns an error.
func Mount(mountpoint string, fs fuse.RawFileSystem, opts *fuse.MountOptions) (*Conn, error) {
	direct := os.Geteuid() == 0
	var fd int
	var err error
	if direct {
		fd, err = mountDirect(mountpoint, opts)
	} else {
		fd, err = mountFusermount(mountpoint, opts)
	}
	if err != nil {
		return nil, err
	}
	c, err := newConn(fd, mountpoint, fs, opts)
	if err != nil {
		(&Conn{mountpoint: mountpoint, direct: direct}).unmount(true)
		return nil, err
	}
	c.direct = direct
	if err := c.init(); err != nil {
		c.unmount(true)
		c.file.Close()
		return nil, err
	}
	return c, nil
}

// mountDirect mounts with mount(2), for a process running as root, and
// returns the FUSE descriptor.
func mountDirect(mountpoint string, opts *fuse.MountOptions) (int, error) {
	var st unix.Stat_t
	if err := retry(func() error { return unix.Stat(mountpoint, &st) }); err != nil {
		return -1, fmt.Errorf("stat mountpoint %s: %w", mountpoint, err)
	}
	var fd int
	err := retry(func() (err error) {
		fd, err = unix.Open("/dev/fuse", unix.O_RDWR|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return -1, fmt.Errorf("open /dev/fuse: %w", err)
	}
	source := opts.FsName
	if source == "" {
		source = opts.Name
	}
	flags, data := mountData(fd, st.Mode, opts)
	if err := retry(func() error { return unix.Mount(source, mountpoint, "fuse."+opts.Name, flags, data) }); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("mount %s on %s (options %s): %w", source, mountpoint, data, err)
	}
	return fd, nil
}

// mountData returns the flags and the option string of mount(2) for a FUSE
// mount on descriptor fd, as go-fuse's mountDirect makes them: fd, root mode,
// owner and max_read, then opts.Options, of which the words for nodev, dev,
// nosuid, suid, noexec and exec become flags (the kernel refuses them as
// words), and allow_other.
func mountData(fd int, rootMode uint32, opts *fuse.MountOptions) (uintptr, string) {
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV)
	if opts.DirectMountFlags != 0 {
		flags = opts.DirectMountFlags
	}
	words := []string{
		fmt.Sprintf("fd=%d", fd),
		fmt.Sprintf("rootmode=%o", rootMode&unix.S_IFMT),
		fmt.Sprintf("user_id=%d", os.Geteuid()),
		fmt.Sprintf("group_id=%d", os.Getegid()),
		fmt.Sprintf("max_read=%d", opts.MaxWrite),
	}
	for _, o := range opts.Options {
		switch o {
		case "nodev":
			flags |= unix.MS_NODEV
		case "dev":
			flags &^= unix.MS_NODEV
		case "nosuid":
			flags |= unix.MS_NOSUID
		case "suid":
			flags &^= unix.MS_NOSUID
		case "noexec":
			flags |= unix.MS_NOEXEC
		case "exec":
			flags &^= unix.MS_NOEXEC
		default:
			words = append(words, o)
		}
	}
	if opts.AllowOther {
		words = append(words, "allow_other")
	}
	return flags, strings.Join(words, ",")
}

// newConn makes the Conn that serves the FUSE descriptor fd, mounted on
// mountpoint; it owns fd from then on.
func newConn(fd int, mountpoint string, fs fuse.RawFileSystem, opts *fuse.MountOptions) (*Conn, error) {
	file := os.NewFile(uintptr(fd), "/dev/fuse")
	raw, err := file.SyscallConn()
	if err != nil {
		file.Close()
		return nil, fmt.Errorf("fuse descriptor: %w", err)
	}
	logger := opts.Logger
	if logger == nil {
		logger = log.Default()
	}
	maxWrite := opts.MaxWrite
	if maxWrite <= 0 {
		maxWrite = fuse.MAX_KERNEL_WRITE
	}
	c := &Conn{
		mountpoint: mountpoint,
		fs:         fs,
		ps:         fuse.NewProtocolServer(fs, opts),
		logger:     logger,
		debug:      opts.Debug,
		file:       file,
		raw:        raw,
		bufSize:    maxWrite + headerRoom,
		serving:    make(chan struct{}),
		// As go-fuse: as many readers waiting as processors, 2 to 16.
		maxReaders: min(max(runtime.GOMAXPROCS(0), 2), 16),
	}
	c.bufs.New = func() any {
		b := make([]byte, c.bufSize)
		return &b
	}
	return c, nil
}

// init reads the kernel's INIT request, answers it through the protocol
// server and records what was offered and negotiated.
func (c *Conn) init() error {
	in := make([]byte, c.bufSize)
	n, err := c.read(in)
	if err != nil {
		return fmt.Errorf("read INIT: %w", err)
	}
	hdrSize := int(unsafe.Sizeof(fuse.InHeader{}))
	if n < hdrSize {
		return fmt.Errorf("read INIT: short request of %d bytes", n)
	}
	if op := (*fuse.InHeader)(unsafe.Pointer(&in[0])).Opcode; op != opInit {
		return fmt.Errorf("first request has opcode %d, want INIT (%d)", op, opInit)
	}
	// go-fuse's InitIn starts with the header. An older kernel sends a
	// shorter request: the rest stays zero.
	copy(bytesOf(&c.settings), in[:n])
	out := c.getBuf()
	defer c.bufs.Put(out)
	m, st := c.ps.HandleRequest([][]byte{in[:n]}, [][]byte{*out})
	if !st.Ok() {
		return fmt.Errorf("answer INIT: %w", syscall.Errno(st))
	}
	reply := (*out)[:m]
	outHdr := int(unsafe.Sizeof(fuse.OutHeader{}))
	if m < outHdr {
		return fmt.Errorf("answer INIT: short reply of %d bytes", m)
	}
	if e := (*fuse.OutHeader)(unsafe.Pointer(&reply[0])).Status; e != 0 {
		return fmt.Errorf("INIT refused by the protocol server: %w", syscall.Errno(-e))
	}
	var initOut fuse.InitOut
	copy(bytesOf(&initOut), reply[outHdr:])
	c.flags = initOut.Flags64()
	c.maxWrite, c.maxPages = initOut.MaxWrite, initOut.MaxPages
	if err := c.write(reply); err != nil {
		return fmt.Errorf("write INIT reply: %w", err)
	}
	return nil
}

// KernelSettings returns the kernel's INIT request: what it offers.
func (c *Conn) KernelSettings() *fuse.InitIn {
	s := c.settings
	return &s
}

// Flags returns the capabilities negotiated at INIT (fuse.CAP_*).
func (c *Conn) Flags() uint64 { return c.flags }

// pollHackName is the name under the mount root that go-fuse's protocol
// server answers itself, as a file whose POLL gets ENOSYS.
const pollHackName = ".go-fuse-epoll-hack"

// WaitMount makes the kernel learn, while Serve runs, that the file system
// does not implement POLL, as fuse.Server.WaitMount does: it polls go-fuse's
// fake file, and the kernel asks no more POLLs once one got ENOSYS. Without
// it a program that serves the mount and opens files on it in the same
// process (a Go program registers every file it opens with epoll) can hang:
// epoll_ctl waits for the POLL reply while holding the epoll lock the Go
// runtime's poller needs.
func (c *Conn) WaitMount() error {
	var fd int
	err := retry(func() (err error) {
		fd, err = unix.Open(filepath.Join(c.mountpoint, pollHackName), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return fmt.Errorf("open %s on the mount: %w", pollHackName, err)
	}
	defer unix.Close(fd)
	// Only the POLL request matters, not the result.
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN | unix.POLLPRI | unix.POLLOUT}}
	retry(func() error { _, err := unix.Poll(pfd, 0); return err })
	return nil
}

// Unmount unmounts the connection's mountpoint: with umount2 (no flags)
// as root, else through fusermount3 -u. It fails with EBUSY while the mount
// is in use. The loop of Serve ends when the kernel closes the connection.
func (c *Conn) Unmount() error { return c.unmount(false) }

// unmount unmounts the mountpoint, detaching it at once if lazy.
func (c *Conn) unmount(lazy bool) error {
	if !c.direct {
		if err := fusermount.Unmount(c.mountpoint, lazy); err != nil {
			return fmt.Errorf("unmount %s: %w", c.mountpoint, err)
		}
		return nil
	}
	var flags int
	if lazy {
		flags = unix.MNT_DETACH
	}
	if err := retry(func() error { return unix.Unmount(c.mountpoint, flags) }); err != nil {
		return fmt.Errorf("unmount %s: %w", c.mountpoint, err)
	}
	return nil
}

// retry calls f until it fails with something other than EINTR.
func retry(f func() error) error {
	for {
		if err := f(); err != unix.EINTR {
			return err
		}
	}
}
