package sievefs

import (
	"container/list"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/internal/chain"
	"github.com/sievefs/sievefs/internal/lower"
)

// dirHandle is an open directory: a descriptor read with getdents64 and the
// entries read but not yet sent. The descriptor sits in the mount's bounded
// cache of directory descriptors (dirFDs): an idle handle may lose it, and
// the next READDIR reopens the directory and seeks to the offset it asks
// for. The kernel sends one READDIR at a time per open directory, and that
// request owns the listing's state (buf to entries) without a lock, so that
// none is held while filters judge the entries; dir and buf change under
// dirFDs's lock only while no request uses the handle.
type dirHandle struct {
	ino *lower.Inode
	dir *lower.File // nil when evicted
	buf []byte      // nil when evicted
	pos int         // next unsent entry in buf
	end int         // end of valid data in buf
	off uint64      // stream offset after the last entry sent
	eof bool
	// entries is the chain the listed entries are asked about
	// (chain.Chain.Below): made from the chain of and the view path
	// in belowOf and belowDir, and made again when either changes.
	entries  *chain.Chain
	belowOf  *chain.Chain
	belowDir string
	// idle is the handle's element of dirFDs's idle list, guarded by its
	// mutex; nil when not on it.
	idle *list.Element
}

// entryChain returns the chain of the rules that may act on the entries of
// the directory, the view path dir under chain c: nil when there are none,
// and then the entries are listed as without filters.
func (d *dirHandle) entryChain(c *chain.Chain, dir string) *chain.Chain {
	if c != d.belowOf || dir != d.belowDir {
		d.entries, d.belowOf, d.belowDir = c.Below(dir), c, dir
		if d.entries.Len() == 0 {
			d.entries = nil
		}
	}
	return d.entries
}

const dirBufSize = 32 << 10

// OpenDir opens a directory.
func (fs *fileSystem) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) (code fuse.Status) {
	defer fs.track(filter.OpOpendir, in.NodeId, "", time.Now(), &code)
	q := fs.newRequest()
	defer fs.freeRequest(q)
	if s := fs.gate(q, filter.OpOpendir, in.NodeId, &in.Caller); !s.Ok() {
		return s
	}
	if _, s := q.pre(); !s.Ok() {
		return q.post(s)
	}
	d := &dirHandle{ino: q.ino}
	err := fs.dirFDs.acquire(d, func() (*lower.File, error) { return fs.tree.OpenDir(q.ino) })
	fs.dirFDs.release(d)
	if err != nil {
		return q.post(fs.status(filter.OpOpendir, err))
	}
	out.Fh = fs.dirs.add(d)
	if fs.opts.Cache != CacheNever && q.chain.ListingCacheable(q.Path) {
		// The kernel keeps the listing and serves the next ones itself
		// until the directory changes: through the mount (it counts the
		// changes), or underneath it (the directory's mtime, checked
		// when its attributes expire). Reloads drop it (invalidateAll).
		out.OpenFlags |= fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE
	}
	if s := q.post(fuse.OK); !s.Ok() {
		fs.ReleaseDir(&fuse.ReleaseIn{Fh: out.Fh})
		return s
	}
	return fuse.OK
}

// ReadDir lists entries.
func (fs *fileSystem) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) (code fuse.Status) {
	defer fs.track(filter.OpReaddir, in.NodeId, "", time.Now(), &code)
	return fs.readDir(filter.OpReaddir, in, out)
}

// ReadDirPlus lists entries with their attributes, counting one lookup of
// each entry it returns (except "." and "..", which the kernel ignores).
func (fs *fileSystem) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) (code fuse.Status) {
	defer fs.track(filter.OpReaddirplus, in.NodeId, "", time.Now(), &code)
	return fs.readDir(filter.OpReaddirplus, in, out)
}

// readDir serves READDIR and READDIRPLUS. With filters, each entry gets its
// view name, the directory filters' verdict and the lookup decision (with
// its attributes) before it is listed; only the rules that may act beneath
// the directory are asked (entryChain), and with none the entries are
// listed as without filters.
func (fs *fileSystem) readDir(o filter.Op, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	d, ok := fs.dirs.get(in.Fh)
	if !ok {
		return fuse.EBADF
	}
	q := fs.newRequest()
	defer fs.freeRequest(q)
	if s := fs.gate(q, o, nodeID(d.ino, 0), &in.Caller); !s.Ok() {
		return s
	}
	if err := fs.dirFDs.acquire(d, func() (*lower.File, error) { return fs.tree.OpenDir(d.ino) }); err != nil {
		if err == unix.ENOENT || err == unix.ESTALE {
			// Deleted, or moved out of the tree: nothing more to list.
			return fuse.OK
		}
		return fs.status(o, err)
	}
	defer fs.dirFDs.release(d)
	if d.buf == nil {
		d.buf = make([]byte, dirBufSize)
	}
	l := lister{q: q, d: d, out: out, plus: o == filter.OpReaddirplus}
	if fs.paths {
		l.entries = d.entryChain(q.chain, q.Path)
	}
	// Once per request, not per entry: a directory moved out of the tree
	// (or deleted) since it was opened lists nothing more.
	if !fs.tree.Beneath(d.ino, d.dir) {
		return fuse.OK
	}
	if in.Offset != d.off {
		if _, err := d.dir.Seek(int64(in.Offset), 0); err != nil {
			return fs.status(o, err)
		}
		d.pos, d.end, d.off, d.eof = 0, 0, in.Offset, false
	}
	for {
		if d.pos >= d.end {
			if d.eof {
				return fuse.OK
			}
			n, err := d.dir.Getdents(d.buf)
			if err != nil {
				return fs.status(o, err)
			}
			if n == 0 {
				d.eof = true
				return fuse.OK
			}
			d.pos, d.end = 0, n
		}
		var e fuse.DirEntry
		size := e.Parse(d.buf[d.pos:d.end])
		if !l.add(e) {
			return fuse.OK
		}
		d.pos += size
		d.off = e.Off
	}
}

// lister lists the entries of one READDIR or READDIRPLUS request.
type lister struct {
	q       *request
	d       *dirHandle
	out     *fuse.DirEntryList
	plus    bool
	entries *chain.Chain // the rules that may act beneath; nil for none
	// Scratch space for one entry at a time, kept here so that a listing
	// does not allocate it per entry.
	st unix.Stat_t
	eo fuse.EntryOut
	r  filter.Request
	de filter.DirEntry
}

// add lists the lower entry e, or skips it when the filters drop it. It
// returns false when the reply is full: e is then listed by the next
// request.
func (l *lister) add(e fuse.DirEntry) bool {
	fs := l.q.fs
	if e.Name == "." || e.Name == ".." {
		if l.plus {
			return l.out.AddDirLookupEntry(e) != nil
		}
		return l.out.AddDirEntry(e)
	}
	lname := e.Name
	if l.entries == nil {
		if !l.plus {
			return l.out.AddDirEntry(e)
		}
		st := &l.st
		child, err := fs.tree.LookupAt(l.d.ino, l.d.dir, lname, st)
		return l.addPlus(e, child, err, st, func(eo *fuse.EntryOut) {
			if fs.paths {
				fs.tree.SetName(child, l.d.ino, e.Name)
			}
			fs.fillEntry(child, st, eo)
		})
	}
	eo := &l.eo
	*eo = fuse.EntryOut{}
	child, st, err, shown := l.judge(&e, lname, eo)
	if !shown {
		return true
	}
	if !l.plus {
		if child != nil {
			fs.tree.Forget(child.ID, 1)
		}
		return l.out.AddDirEntry(e)
	}
	return l.addPlus(e, child, err, st, func(out *fuse.EntryOut) { *out = *eo })
}

// addPlus adds a READDIRPLUS entry for child (err from its lookup), filled
// by fill. An entry removed since getdents is left without a node (NodeId
// 0), which the kernel skips. When the reply is full, the lookup of child
// is given back.
func (l *lister) addPlus(e fuse.DirEntry, child *lower.Inode, err error, st *unix.Stat_t, fill func(*fuse.EntryOut)) bool {
	eo := l.out.AddDirLookupEntry(e)
	if eo == nil {
		if err == nil && child != nil {
			l.q.fs.tree.Forget(child.ID, 1)
		}
		return false
	}
	if err == nil && child != nil {
		fill(eo)
		l.out.FixMode(st.Mode)
	}
	return true
}

// judge gives the entry e (lower name lname) its view name and asks the
// rules that may act beneath the directory whether it is listed: the name
// mappers, the directory filters (with the entry's presented attributes)
// and the lookup decision, in that order. For READDIRPLUS, or when a
// post-filter of lookup must see the node, the entry is looked up (child,
// counted once) and eo filled as a lookup would fill it.
func (l *lister) judge(e *fuse.DirEntry, lname string, eo *fuse.EntryOut) (child *lower.Inode, st *unix.Stat_t, err error, shown bool) {
	fs, c, dir := l.q.fs, l.entries, l.q.Path
	if c.MapsNames() {
		view, ok := c.ViewName(dir, e.Name)
		if !ok {
			return nil, nil, nil, false
		}
		e.Name = view
	}
	path := joinPath(dir, e.Name)
	// The lookup decision's request, as a lookup of the name would make.
	l.r = filter.Request{Op: filter.OpLookup, Caller: l.q.Caller, Path: path, Type: e.Mode & unix.S_IFMT}
	r := &l.r
	st = &l.st
	look := l.plus || c.PostSees(filter.OpLookup) || c.HasDir()
	if look {
		if err := fs.tree.StatIn(l.d.dir, lname, st); err != nil {
			// Gone since getdents: listed without a node.
			return nil, st, err, true
		}
		r.Type = st.Mode & unix.S_IFMT
		fillAttr(st, &eo.Attr)
		present(c, r, path, &eo.Attr)
		r.Attr = filterAttr(&eo.Attr)
	}
	if c.HasDir() {
		l.de = filter.DirEntry{Name: e.Name, Path: path, Ino: e.Ino, Type: e.Mode & unix.S_IFMT, Attr: &r.Attr}
		if !c.Keep(r, &l.de) {
			return nil, nil, nil, false
		}
	}
	if _, s := fs.runPre(c, r); !s.Ok() {
		return nil, nil, nil, false
	}
	if !look {
		return nil, st, nil, true
	}
	if child, err = fs.tree.AdoptAt(l.d.ino, l.d.dir, lname, st); err != nil {
		return nil, st, err, true
	}
	fs.tree.SetName(child, l.d.ino, e.Name)
	fs.entryNode(c, r.Caller, path, child, eo)
	if c.PostSees(filter.OpLookup) {
		if s := fs.runPost(c, r, fuse.OK); !s.Ok() {
			return l.drop(child)
		}
	}
	return child, st, nil, true
}

// drop gives back the lookup of an entry the filters do not list.
func (l *lister) drop(child *lower.Inode) (*lower.Inode, *unix.Stat_t, error, bool) {
	if child != nil {
		l.q.fs.tree.Forget(child.ID, 1)
	}
	return nil, nil, nil, false
}

// ReleaseDir closes a directory.
func (fs *fileSystem) ReleaseDir(in *fuse.ReleaseIn) {
	defer fs.trackNoStatus(filter.OpReleasedir, in.NodeId, "", time.Now())
	if d, ok := fs.dirs.remove(in.Fh); ok {
		fs.dirFDs.forget(d)
	}
}

// FsyncDir flushes a directory to stable storage, through a descriptor of
// its own: a READDIR may be using the handle's.
func (fs *fileSystem) FsyncDir(cancel <-chan struct{}, in *fuse.FsyncIn) (code fuse.Status) {
	defer fs.track(filter.OpFsyncdir, in.NodeId, "", time.Now(), &code)
	d, ok := fs.dirs.get(in.Fh)
	if !ok {
		return fuse.EBADF
	}
	dir, err := fs.tree.OpenDir(d.ino)
	if err != nil {
		return fs.status(filter.OpFsyncdir, err)
	}
	defer dir.Close()
	return fs.status(filter.OpFsyncdir, dir.Sync(false))
}
