package filter

// Op is one filesystem operation. Its names are the same in policy files,
// logs and metrics.
type Op uint8

// The operations, one per FUSE request the dispatcher serves.
const (
	OpLookup Op = iota
	OpForget
	OpGetattr
	OpSetattr
	OpMknod
	OpMkdir
	OpUnlink
	OpRmdir
	OpRename
	OpLink
	OpSymlink
	OpReadlink
	OpAccess
	OpStatfs
	OpStatx
	OpGetxattr
	OpListxattr
	OpSetxattr
	OpRemovexattr
	OpCreate
	OpTmpfile
	OpOpen
	OpRead
	OpWrite
	OpFlush
	OpFsync
	OpRelease
	OpLseek
	OpFallocate
	OpCopyFileRange
	OpOpendir
	OpReaddir
	OpReaddirplus
	OpReleasedir
	OpFsyncdir
	OpSetlk
	OpSetlkw
	NumOps // the number of operations, not one
)

var opNames = [NumOps]string{
	"lookup", "forget", "getattr", "setattr", "mknod", "mkdir", "unlink", "rmdir", "rename", "link",
	"symlink", "readlink", "access", "statfs", "statx", "getxattr", "listxattr", "setxattr", "removexattr",
	"create", "tmpfile", "open", "read", "write", "flush", "fsync", "release", "lseek", "fallocate",
	"copy_file_range", "opendir", "readdir", "readdirplus", "releasedir", "fsyncdir",
	"setlk", "setlkw",
}

// String returns the operation's name, as in policy files.
func (o Op) String() string {
	if o >= NumOps {
		return "unknown"
	}
	return opNames[o]
}

// ParseOp returns the operation of a name.
func ParseOp(name string) (Op, bool) {
	for i, n := range opNames {
		if n == name {
			return Op(i), true
		}
	}
	return 0, false
}

// OpNames lists every operation's name, in order.
func OpNames() []string { return opNames[:] }

// Modifies reports whether the operation can change the tree: names,
// attributes, extended attributes or data. Open and create modify when
// their flags ask for writing; see Request.Modifies.
func (o Op) Modifies() bool {
	switch o {
	case OpSetattr, OpMknod, OpMkdir, OpUnlink, OpRmdir, OpRename, OpLink, OpSymlink,
		OpSetxattr, OpRemovexattr, OpCreate, OpTmpfile, OpWrite, OpFallocate, OpCopyFileRange:
		return true
	}
	return false
}

// Filtered reports whether requests of the operation go through the filter
// chain. Reads and writes do not (file data is passthrough, or a
// DataFilter's stream), nor do operations on a file or directory already
// open (flush, fsync, lseek, fallocate, copy_file_range, locks, release),
// whose opening went through the chain.
func (o Op) Filtered() bool {
	switch o {
	case OpForget, OpRead, OpWrite, OpFlush, OpFsync, OpRelease, OpLseek, OpFallocate,
		OpCopyFileRange, OpReaddir, OpReaddirplus, OpReleasedir, OpFsyncdir, OpSetlk, OpSetlkw:
		return false
	}
	return true
}
