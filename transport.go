package sievefs

import (
	"errors"
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
	// TransportURing is FUSE over io_uring (internal/fuseconn and
	// internal/iouring): INIT, FORGETs, INTERRUPTs and notifications on the
	// /dev/fuse descriptor as with TransportDev, every other request on
	// one io_uring queue per CPU. It needs Linux 6.14 or later with the
	// fuse module's enable_uring parameter on; where the kernel does not
	// offer it the mount fails with ErrMountOption. Experimental.
	TransportURing Transport = "uring"
)

// ParseTransport parses go-fuse, dev or uring.
func ParseTransport(s string) (Transport, error) {
	switch t := Transport(s); t {
	case TransportGoFuse, TransportDev, TransportURing:
		return t, nil
	}
	return "", fmt.Errorf("transport %q: want go-fuse, dev or uring", s)
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
// the dev and uring transports have answered INIT when they return, and
// are attached to fs here.
func newServer(t Transport, fs *fileSystem, mnt string, mopts *fuse.MountOptions) (server, error) {
	var c *fuseconn.Conn
	var err error
	switch t {
	case TransportDev:
		c, err = fuseconn.Mount(mnt, fs, mopts)
	case TransportURing:
		c, err = fuseconn.MountURing(mnt, fs, mopts)
		if errors.Is(err, fuseconn.ErrURingUnavailable) {
			err = fmt.Errorf("%w: %w", ErrMountOption, err)
		}
	default:
		return fuse.NewServer(fs, mnt, mopts)
	}
	if err != nil {
		return nil, err
	}
	fs.attach(c)
	return c, nil
}
