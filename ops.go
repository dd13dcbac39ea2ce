package sievefs

import (
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/sievefs/sievefs/filter"
)

// fileSystem implements every method of go-fuse's RawFileSystem itself,
// without embedding a default: a method go-fuse adds fails the build until
// it is served here and given its row below.
var _ fuse.RawFileSystem = (*fileSystem)(nil)

// rawOps maps each method of go-fuse's RawFileSystem that serves a FUSE
// request to the operation it is counted, logged and filtered as; Op.Info
// gives the operation's filter families, what a filter may answer and, for
// an operation pre- and post-filters never see, why that is safe.
// rawNotServed says for every other method why it carries no request to
// the lower tree. TestRawFileSystemTable checks that every method of the
// interface is in exactly one of them.
var rawOps = map[string]filter.Op{
	"Lookup":        filter.OpLookup,
	"Forget":        filter.OpForget,
	"GetAttr":       filter.OpGetattr,
	"SetAttr":       filter.OpSetattr,
	"Mknod":         filter.OpMknod,
	"Mkdir":         filter.OpMkdir,
	"Unlink":        filter.OpUnlink,
	"Rmdir":         filter.OpRmdir,
	"Rename":        filter.OpRename,
	"Link":          filter.OpLink,
	"Symlink":       filter.OpSymlink,
	"Readlink":      filter.OpReadlink,
	"Access":        filter.OpAccess,
	"StatFs":        filter.OpStatfs,
	"Statx":         filter.OpStatx,
	"GetXAttr":      filter.OpGetxattr,
	"ListXAttr":     filter.OpListxattr,
	"SetXAttr":      filter.OpSetxattr,
	"RemoveXAttr":   filter.OpRemovexattr,
	"Create":        filter.OpCreate,
	"Tmpfile":       filter.OpTmpfile,
	"Open":          filter.OpOpen,
	"Read":          filter.OpRead,
	"Write":         filter.OpWrite,
	"Writev":        filter.OpWrite,
	"Flush":         filter.OpFlush,
	"Fsync":         filter.OpFsync,
	"Release":       filter.OpRelease,
	"Lseek":         filter.OpLseek,
	"Fallocate":     filter.OpFallocate,
	"CopyFileRange": filter.OpCopyFileRange,
	"OpenDir":       filter.OpOpendir,
	"ReadDir":       filter.OpReaddir,
	"ReadDirPlus":   filter.OpReaddirplus,
	"ReleaseDir":    filter.OpReleasedir,
	"FsyncDir":      filter.OpFsyncdir,
	"SetLk":         filter.OpSetlk,
	"SetLkw":        filter.OpSetlkw,
}

var rawNotServed = map[string]string{
	"String":    "not a request: the filesystem's name in go-fuse's logs",
	"SetDebug":  "not a request: --fuse-debug sets go-fuse's wire log at mount",
	"Init":      "not a request: takes the kernel's INIT settings (passthrough)",
	"OnUnmount": "not a request: the unmount is handled by Mount",
	"GetLk": "answered ENOSYS: POSIX record locks are the kernel's (FUSE_POSIX_LOCKS is not " +
		"negotiated), so the kernel does not send GETLK",
	"Ioctl": "answered ENOSYS: no ioctl reaches the lower tree, so none can move or show data " +
		"around the filters (cloning and deduplication have no FUSE request; the kernel " +
		"answers FICLONE and FIDEDUPERANGE with EOPNOTSUPP)",
}

// SetDebug is a no-op: go-fuse's wire log is set at mount (--fuse-debug).
func (fs *fileSystem) SetDebug(bool) {}

// OnUnmount is a no-op: Mount handles the unmount.
func (fs *fileSystem) OnUnmount() {}

// GetLk is never sent: POSIX record locks are the kernel's.
func (fs *fileSystem) GetLk(cancel <-chan struct{}, in *fuse.LkIn, out *fuse.LkOut) fuse.Status {
	return fuse.ENOSYS
}

// Ioctl refuses every ioctl (see rawNotServed).
func (fs *fileSystem) Ioctl(cancel <-chan struct{}, in *fuse.IoctlIn, inbuf []byte, out *fuse.IoctlOut, outbuf []byte) fuse.Status {
	return fuse.ENOSYS
}
