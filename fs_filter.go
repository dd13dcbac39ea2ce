package sievefs

import (
	"errors"
	"io"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/internal/lower"
)

// Node IDs of data variants. A regular file whose data some data rules must
// see for a caller is shown to that caller under a node ID of its own: the
// inode's ID with the set of those rules (filter.Chain.Claims) in the top
// byte. The kernel keeps that node's attributes and page cache apart from
// the plain node's, which other callers use with passthrough; its opens are
// all served through the rules' streams.
const variantShift = 56

func nodeID(ino *lower.Inode, mask uint8) uint64 { return ino.ID | uint64(mask)<<variantShift }

func splitNodeID(id uint64) (base uint64, mask uint8) {
	return id & (1<<variantShift - 1), uint8(id >> variantShift)
}

func callerOf(c *fuse.Caller) filter.Caller {
	return filter.Caller{Uid: c.Uid, Gid: c.Gid, Pid: c.Pid}
}

// joinPath joins a view directory path and a name.
func joinPath(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// viewPath returns the path of ino in the view. Every inode the kernel
// knows was named when it was looked up or made; one that was not is
// reported stale.
func (fs *fileSystem) viewPath(ino *lower.Inode) (string, fuse.Status) {
	p, ok := fs.tree.ViewPath(ino)
	if !ok {
		fs.log.Error("inode without a path", "inode", ino.ID)
		return "", fuse.Status(syscall.ESTALE)
	}
	return p, fuse.OK
}

// begin starts a filtered operation on the node ino: it returns the chain
// and the request, or a nil chain when the mount has no filters.
func (fs *fileSystem) begin(o filter.Op, ino *lower.Inode, c *fuse.Caller) (*filter.Chain, *filter.Request, fuse.Status) {
	chain := fs.filters.Load()
	if chain == nil {
		return nil, nil, fuse.OK
	}
	path, s := fs.viewPath(ino)
	if !s.Ok() {
		return nil, nil, s
	}
	return chain, &filter.Request{Op: o, Caller: callerOf(c), Path: path, Type: ino.Type}, fuse.OK
}

// beginName starts a filtered operation on name in the directory parent. It
// returns the lower name to use (name itself without filters).
func (fs *fileSystem) beginName(o filter.Op, parent *lower.Inode, name string, c *fuse.Caller) (*filter.Chain, *filter.Request, string, fuse.Status) {
	chain := fs.filters.Load()
	if chain == nil {
		return nil, nil, name, fuse.OK
	}
	dir, s := fs.viewPath(parent)
	if !s.Ok() {
		return nil, nil, "", s
	}
	r := &filter.Request{Op: o, Caller: callerOf(c), Path: joinPath(dir, name)}
	lname, err := chain.LowerName(dir, name)
	if err != nil {
		return chain, r, "", fs.status(o.String(), err)
	}
	return chain, r, lname, fuse.OK
}

// pre runs the pre-filters. It returns OK to go on; filter.ErrAnswered is
// reported as answered, and ends with EIO for operations that cannot be
// answered by a filter.
func (fs *fileSystem) pre(c *filter.Chain, r *filter.Request, answerable bool) (answered bool, code fuse.Status) {
	err := c.Pre(r)
	if err == nil {
		return false, fuse.OK
	}
	if errors.Is(err, filter.ErrAnswered) {
		if answerable {
			return true, fuse.OK
		}
		fs.log.Error("a filter answered an operation that needs the lower tree", "op", r.Op.String(), "path", r.Path)
		return false, fuse.EIO
	}
	return false, fs.status(r.Op.String(), err)
}

// post runs the post-filters on the result of a filtered operation; without
// filters it returns code as it is.
func (fs *fileSystem) post(c *filter.Chain, r *filter.Request, code fuse.Status) fuse.Status {
	if c == nil || !c.HasPost() {
		return code
	}
	var err error
	if !code.Ok() {
		err = syscall.Errno(code)
	}
	return fs.status(r.Op.String(), c.Post(r, err))
}

// present runs the attribute filters on attributes shown to r's caller.
func present(c *filter.Chain, r *filter.Request, path string, a *fuse.Attr) {
	if !c.HasAttr() {
		return
	}
	fa := filterAttr(a)
	c.Attr(r, path, &fa)
	a.Ino, a.Mode, a.Nlink, a.Owner.Uid, a.Owner.Gid, a.Size = fa.Ino, fa.Mode, fa.Nlink, fa.Uid, fa.Gid, fa.Size
}

// filterAttr returns the part of FUSE attributes filters see.
func filterAttr(a *fuse.Attr) filter.Attr {
	return filter.Attr{Ino: a.Ino, Mode: a.Mode, Nlink: a.Nlink, Uid: a.Uid, Gid: a.Gid, Size: a.Size}
}

// timeoutFor is how long the kernel may cache what it is told about path,
// the inode ino: not at all when the filters' answer depends on
// the caller.
func (fs *fileSystem) timeoutFor(c *filter.Chain, path string, ino *lower.Inode) time.Duration {
	if c != nil && c.DependsOnCaller(path) {
		return 0
	}
	return fs.ttl(ino)
}

// entry fills a LOOKUP-style reply for ino, known as path in the view: the
// node ID (a data variant when data rules claim the file for the caller),
// presented attributes and cache timeouts.
func (fs *fileSystem) entry(c *filter.Chain, r *filter.Request, path string, ino *lower.Inode, st *unix.Stat_t, out *fuse.EntryOut) {
	fs.fillEntry(ino, st, out)
	if c == nil {
		return
	}
	if ino.Type == unix.S_IFREG && c.HasData() {
		out.NodeId = nodeID(ino, fs.claims(c, r, path, ino))
	}
	present(c, r, path, &out.Attr)
	t := fs.timeoutFor(c, path, ino)
	out.SetEntryTimeout(t)
	out.SetAttrTimeout(t)
}

// claims asks the data rules which must see the data of the regular file
// ino, known as path, for r's caller.
func (fs *fileSystem) claims(c *filter.Chain, r *filter.Request, path string, ino *lower.Inode) uint8 {
	if !c.MayClaim(r.Caller, path) {
		return 0
	}
	// r is this request's own: it is borrowed for the question.
	savedPath, savedType := r.Path, r.Type
	r.Path, r.Type = path, unix.S_IFREG
	mask := c.Claims(r)
	r.Path, r.Type = savedPath, savedType
	return mask
}

// preadFull reads len(p) bytes at off, or up to the end of the file
// (io.EOF), as io.ReaderAt requires.
func preadFull(fd int, p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Pread(fd, p[n:], off+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, io.EOF
		}
		n += m
	}
	return n, nil
}

// lowerFile is a lower file open for a data rule's stream.
type lowerFile struct{ fd int }

func (f lowerFile) ReadAt(p []byte, off int64) (int, error) { return preadFull(f.fd, p, off) }

func (f lowerFile) WriteAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Pwrite(f.fd, p[n:], off+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}

func (f lowerFile) Size() (int64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(f.fd, &st); err != nil {
		return 0, err
	}
	return st.Size, nil
}

func (f lowerFile) Version() (filter.Version, error) {
	var st unix.Stat_t
	if err := unix.Fstat(f.fd, &st); err != nil {
		return filter.Version{}, err
	}
	return filter.Version{Dev: st.Dev, Ino: st.Ino, Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano()}, nil
}

// invalidateAll drops what the kernel caches under the names the tree
// recorded (every name, under a policy) and every node's attributes: after
// the filter chain changed, or the watch lost events.
func (fs *fileSystem) invalidateAll() {
	if fs.server == nil {
		return
	}
	// Directories drop their cached listings too (offset 0: the pages that
	// hold them); other inodes their attributes.
	fs.server.InodeNotify(lower.RootID, 0, 0)
	for _, n := range fs.tree.Names() {
		if n.Parent != nil {
			fs.server.EntryNotify(n.Parent.ID, n.Name)
		}
		off := int64(-1)
		if n.Ino.Type == unix.S_IFDIR {
			off = 0
		}
		fs.server.InodeNotify(n.Ino.ID, off, 0)
	}
}
