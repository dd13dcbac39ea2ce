package sievefs

import (
	"fmt"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/sievefs/sievefs/internal/fuseconn"
)

// Transport says what serves a mount's FUSE connection: reads the kernel's
// requests, hands them to the file system and writes the replies.
type Transport string

const (
	// TransportGoFuse is go-fuse's fuse.Server loop (the default).
	TransportGoFuse Transport = "go-fuse"
	// TransportDev is sievefs's own loop on the /dev/fuse descriptor
	// (internal/fuseconn), through go-fuse's fuse.ProtocolServer: the base
	// for a connection handed over to a successor and for FUSE over
	// io_uring. Experimental.
	TransportDev Transport = "dev"
)

// ParseTransport parses go-fuse or dev.
func ParseTransport(s string) (Transport, error) {
	switch t := Transport(s); t {
	case TransportGoFuse, TransportDev:
		return t, nil
	}
	return "", fmt.Errorf("transport %q: want go-fuse or dev", s)
}

// connection is what the file system needs of the FUSE connection that
// serves it, whichever transport that is: what the kernel offered at INIT,
// notifications that drop what the kernel caches, and passthrough backing
// files.
type connection interface {
	KernelSettings() *fuse.InitIn
	InodeNotify(node uint64, off int64, length int64) fuse.Status
	EntryNotify(parent uint64, name string) fuse.Status
	RegisterBackingFd(m *fuse.BackingMap) (int32, syscall.Errno)
	UnregisterBackingFd(id int32) syscall.Errno
}

// server is what a Mount needs of its transport: serving until the
// connection ends, waiting for the mount to be ready once it serves, and
// unmounting (which fails while the mount is in use).
type server interface {
	connection
	Serve()
	WaitMount() error
	Unmount() error
}

var (
	_ server = (*fuse.Server)(nil)
	_ server = (*fuseconn.Conn)(nil)
)

// newServer mounts fs on mnt with the transport t. The go-fuse server
// answers INIT once it serves (see its WaitMount) and then calls fs.Init;
// the dev transport has answered INIT when it returns, and is attached to
// fs here.
func newServer(t Transport, fs *fileSystem, mnt string, mopts *fuse.MountOptions) (server, error) {
	if t != TransportDev {
		return fuse.NewServer(fs, mnt, mopts)
	}
	c, err := fuseconn.Mount(mnt, fs, mopts)
	if err != nil {
		return nil, err
	}
	fs.attach(c)
	return c, nil
}
