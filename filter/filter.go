// Package filter is the extension point of sievefs: filters that change what
// a mount shows, shaped after FUSE-BPF's pre- and post-filters.
//
// A filter implements only the families of operations it intercepts, each a
// small interface:
//
//   - PreFilter runs before the lower filesystem is touched, in rule order:
//     it may rewrite the request's inputs, answer the operation itself
//     (return ErrAnswered) or end it with an errno.
//   - PostFilter runs after, in reverse order: it sees the result and may
//     rewrite the outputs and the errno.
//   - AttrFilter rewrites the attributes of every node the kernel is told
//     about (lookup, getattr, setattr, create, readdirplus, statx).
//   - DirFilter drops entries from directory listings.
//   - NameMapper maps names between the view and the lower tree.
//   - DataFilter claims files whose data it must see; only those are served
//     by the daemon, through the filter's Stream, while every other file
//     keeps kernel passthrough.
//
// Every FUSE request passes one gate in the dispatcher, and a table (Op.Info)
// gives each operation the families that see it, whether a PreFilter may
// answer it, and for the operations pre- and post-filters never see, why
// that is safe. Every way the kernel learns of a node (lookup, a
// readdirplus entry, create, mknod, mkdir, symlink, link, tmpfile) passes
// the same lookup decision: PreFilter and PostFilter of OpLookup, with the
// node's path, type and attributes, besides the operation's own. Every
// operation that moves or shows file data (read, write, copy_file_range,
// lseek's data map, fallocate, mmap through the page cache) is served under
// the claim its open was given.
//
// Every request carries the node's path relative to the mount root and the
// caller. Filters never see FUSE wire structures. A mount runs its rules
// (sievefs.Options.Rules) in order; a Rule may apply only to some callers
// (Condition), and a filter
// whose answer depends on the caller keeps the kernel from caching that
// answer for other callers.
package filter

import (
	"errors"
	"io"
	"strings"
	"syscall"
)

// Caller is the process a request comes from.
type Caller struct {
	Uid, Gid, Pid uint32
}

// Request is one operation as filters see it. What each operation fills:
//
//   - every operation: Op, Caller and Path: the node's view path; for an
//     operation on a name (lookup, the create family, unlink, rmdir,
//     rename, link) the path of that name; for tmpfile the directory's;
//   - Type: the node's type for operations on a node; the type being made
//     for create, mknod, mkdir, symlink and tmpfile; S_IFDIR for rmdir;
//     the source's type for rename and link; 0 for lookup and unlink in
//     Pre (not known before the lower tree is asked), the node's in Post;
//   - Flags: open, create, tmpfile. Mode: create, mknod, mkdir, tmpfile,
//     and setattr when SetAttr.Mode is set. SetAttr: setattr. Xattr:
//     getxattr, setxattr, removexattr. Target: symlink (an input) and, in
//     Post, readlink. NewPath: rename and link;
//   - Attr: in Post only, for lookup (and every lookup decision: a
//     readdirplus entry, a node made), getattr, setattr, statx and the
//     create family, as presented to the caller. In Pre it is zero (a
//     pre-filter of open or getattr sees no attributes). Value: in Post of
//     getxattr and listxattr.
//
// A PreFilter that answers (ErrAnswered) fills the outputs Op.Info().Answer
// names instead.
type Request struct {
	Op     Op
	Caller Caller
	// Path is the path of the node the operation is about, relative to the
	// mount root ("" for the root). For an operation on a name in a
	// directory (lookup, create, mknod, mkdir, symlink, link, unlink, rmdir,
	// rename) it is the path of that name.
	Path string
	// Type is the node's file type (the S_IFMT bits) when it exists and is
	// known; for the create family it is the type being made.
	Type uint32
	// NewPath is the destination of rename and link.
	NewPath string

	// Inputs a PreFilter may rewrite.

	// Flags are the open(2) flags of open and create.
	Flags int
	// Mode holds the permission bits of create, mknod, mkdir and tmpfile,
	// and of setattr when SetAttr.Mode is set.
	Mode uint32
	// SetAttr says what a setattr changes.
	SetAttr SetAttr
	// Xattr is the extended attribute name of getxattr, setxattr and
	// removexattr.
	Xattr string
	// Target is the target of symlink, and the answer of readlink.
	Target string

	// Outputs a PostFilter may rewrite, or a PreFilter fill when it
	// answers.

	// Attr is the node's attributes (getattr, setattr, and the new node of
	// lookup and the create family).
	Attr Attr
	// Value is the answer of getxattr and listxattr.
	Value []byte
}

// AccessXattr reports whether setting or removing the extended attribute
// name changes who may access the node: POSIX ACLs (system.posix_acl_access,
// system.posix_acl_default), the security namespace (file capabilities,
// security labels) and the trusted namespace. Rules that govern modes and
// owners treat such changes as they treat chmod.
func AccessXattr(name string) bool {
	switch {
	case name == "system.posix_acl_access", name == "system.posix_acl_default":
		return true
	case strings.HasPrefix(name, "security."), strings.HasPrefix(name, "trusted."):
		return true
	}
	return false
}

// Modifies reports whether the request can change the tree: a modifying
// operation, or an open that asks for writing or truncation.
func (r *Request) Modifies() bool {
	if r.Op == OpOpen || r.Op == OpCreate || r.Op == OpTmpfile {
		return r.Op != OpOpen || r.Flags&(syscall.O_ACCMODE|syscall.O_TRUNC) != syscall.O_RDONLY
	}
	return r.Op.Modifies()
}

// SetAttr says which attributes a setattr changes.
type SetAttr struct {
	Mode, Uid, Gid, Size, Atime, Mtime bool
	UidValue, GidValue                 uint32
	SizeValue                          uint64
}

// Attr is the part of a node's attributes filters may rewrite.
type Attr struct {
	Ino   uint64
	Mode  uint32 // file type and permission bits
	Nlink uint32
	Uid   uint32
	Gid   uint32
	Size  uint64
}

// DirEntry is one entry of a directory listing.
type DirEntry struct {
	Name string // as the view shows it
	Path string // relative to the mount root
	Ino  uint64
	Type uint32 // S_IFMT bits, 0 when the lower filesystem does not say
	// Attr is the entry's attributes as the lower tree has them, nil when
	// it was removed since it was listed.
	Attr *Attr
}

// ErrAnswered is returned by a PreFilter that answered the operation itself,
// filling the request's outputs: the lower filesystem is not asked. It is
// accepted for the operations whose Op.Info().Answer is set: getattr and
// statx (Attr), readlink (Target), getxattr and listxattr (Value, for
// listxattr the NUL-terminated names), and operations without outputs
// (setattr, access, unlink, rmdir, rename, setxattr, removexattr); for the
// others it ends the operation with EIO.
var ErrAnswered = errors.New("answered by a filter")

// Filter is what every filter implements: its kind, for logs and metrics.
type Filter interface {
	Kind() string
}

// OpScoped is implemented by pre- and post-filters that act on only some
// operations: the chain asks them about no other. Without it a filter is
// asked about every operation of its families.
type OpScoped interface {
	Sees() OpSet
}

// PreFilter runs before the operation reaches the lower tree.
type PreFilter interface {
	Filter
	// Pre may rewrite r's inputs and returns nil to go on, ErrAnswered, or an
	// error (a syscall.Errno) that ends the operation.
	Pre(r *Request) error
}

// PostFilter runs after the operation, with its result.
//
// It sees every operation of its Sees set (OpScoped; all filtered
// operations without it), and also OpLookup for every node the kernel
// learns of some other way (the lookup decision, see the package doc):
// refusing such a lookup refuses the node. A post-filter that turns a
// create, mknod, mkdir, symlink, link or tmpfile into an error does not
// undo it: the lower tree keeps what was made, and the caller gets the
// error.
type PostFilter interface {
	Filter
	// Post sees the result err (nil on success) and returns the result the
	// kernel gets; it may rewrite r's outputs.
	Post(r *Request, err error) error
}

// AttrFilter rewrites the attributes the kernel is given.
type AttrFilter interface {
	Filter
	// Attr may rewrite a, the attributes of the node at path, as shown to
	// r's caller; it reports whether it changed anything.
	Attr(r *Request, path string, a *Attr) bool
}

// DirFilter drops entries from directory listings.
type DirFilter interface {
	Filter
	// Keep reports whether e is listed to r's caller.
	Keep(r *Request, e *DirEntry) bool
}

// NameMapper maps names between the view and the lower tree. It must be a
// bijection on the names it shows, and must not depend on the caller.
type NameMapper interface {
	Filter
	// LowerName returns the lower name of name in the view directory dir,
	// or an error (a syscall.Errno) when the view cannot hold that name.
	LowerName(dir, name string) (string, error)
	// ViewName returns the view name of the lower name in dir, and false
	// when the entry is not shown.
	ViewName(dir, lower string) (string, bool)
}

// DataFilter sees the data of the files it claims.
type DataFilter interface {
	Filter
	// Claims reports whether the filter must see the data of the regular
	// file r.Path for r's caller. It is asked when the kernel learns of
	// the file and again at open, and must depend on the path and the
	// caller only, never on what the file holds: a claim that depended on
	// the content would be lost by changing it, and the opens made before
	// the change would read the data unfiltered. Every open of a claimed
	// file is served through the filter's Stream, whatever the file holds
	// then or becomes; a stream that cannot make sense of the data must
	// fail its reads (fail closed), not pass the data through.
	Claims(r *Request) bool
	// Open returns the stream through which the claimed file is read and
	// written for this open.
	Open(r *Request, f File) (Stream, error)
}

// File is a lower file open for a DataFilter.
type File interface {
	io.ReaderAt
	io.WriterAt
	// Size returns the file's current size.
	Size() (int64, error)
	// Version returns the file's identity and the state of its data now.
	Version() (Version, error)
}

// Version identifies a lower file (Dev, Ino) and the state of its data
// (Size, Mtime, Ctime, in nanoseconds). A write(2), truncate or other
// change of the data changes Mtime and Ctime; on filesystems with
// fine-grained timestamps (Linux 6.13+ on ext4, xfs, btrfs and tmpfs), a
// change made after the Version was read never shows the same Ctime, and
// File.Version waits for a write(2) under way to finish copying its data
// (on ext4, tmpfs and btrfs). Data read between two equal Versions was not
// changed by such calls; a writer through a shared mapping of the lower
// file changes data without them (see docs/security.md).
type Version struct {
	Dev, Ino     uint64
	Size         int64
	Mtime, Ctime int64
}

// Stream serves the reads and writes of one open of a claimed file.
type Stream interface {
	io.ReaderAt
	io.WriterAt
	io.Closer
}

// CallerDependent is implemented by filters whose answers for a path depend
// on who asks, so that the kernel must not cache them for everyone.
type CallerDependent interface {
	DependsOnCaller(path string) bool
}

// Scoped is implemented by filters that act only on some paths.
type Scoped interface {
	Covers(path string) bool
}

// PathScope is the scope of a filter that acts on the view paths its
// patterns match: a filter embeds it (made by ScopeOf) to implement Scoped
// and ScopedBelow.
type PathScope struct{ paths Patterns }

// ScopeOf returns the scope of the paths that match paths.
func ScopeOf(paths Patterns) PathScope { return PathScope{paths} }

// Paths returns the scope's patterns.
func (s PathScope) Paths() Patterns { return s.paths }

// Covers reports whether path matches one of the patterns.
func (s PathScope) Covers(path string) bool { return s.paths.Match(path) }

// CoversBelow reports whether a pattern may match a path strictly beneath
// dir.
func (s PathScope) CoversBelow(dir string) bool { return s.paths.MatchBelow(dir) }

// ScopedBelow is implemented by scoped filters that can tell whether they
// may act on anything beneath a directory. CoversBelow(dir) false promises
// that the filter does nothing to, and depends on no caller for, any path
// strictly beneath dir in any family it implements; a listing leaves such
// rules out of the questions asked about dir's entries. A directory filter
// with a condition that does not implement it is taken to act beneath every
// directory, so that no listing is cached for everyone.
type ScopedBelow interface {
	CoversBelow(dir string) bool
}
