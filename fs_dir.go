package sievefs

import (
	"sync"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/internal/lower"
)

// dirHandle is an open directory: a descriptor read with getdents64 and the
// entries read but not yet sent.
type dirHandle struct {
	mu  sync.Mutex // serializes READDIR on one handle
	ino *lower.Inode
	fd  int
	buf []byte
	pos int    // next unsent entry in buf
	end int    // end of valid data in buf
	off uint64 // stream offset after the last entry sent
	eof bool
	// entries is the chain the listed entries are asked about
	// (filter.Chain.Below): made from the chain of and the view path
	// in belowOf and belowDir, and made again when either changes.
	entries  *filter.Chain
	belowOf  *filter.Chain
	belowDir string
}

// entryChain returns the chain of the rules that may act on the entries of
// the directory, the view path dir under chain c: nil when there are none,
// and then the entries are listed as without filters.
func (d *dirHandle) entryChain(c *filter.Chain, dir string) *filter.Chain {
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
	defer fs.track(filter.OpOpendir, time.Now(), &code)
	ino, c, r, s := fs.beginNode(filter.OpOpendir, in.NodeId, &in.Caller)
	if !s.Ok() {
		return s
	}
	fd, err := fs.tree.OpenDir(ino)
	if err != nil {
		return fs.post(c, r, fs.status("opendir", err))
	}
	out.Fh = fs.dirs.add(&dirHandle{ino: ino, fd: fd, buf: make([]byte, dirBufSize)})
	if fs.opts.Cache != CacheNever && (c == nil || c.ListingCacheable(r.Path)) {
		// The kernel keeps the listing and serves the next ones itself
		// until the directory changes: through the mount (it counts the
		// changes), or underneath it (the directory's mtime, checked
		// when its attributes expire). Reloads drop it (invalidateAll).
		out.OpenFlags |= fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE
	}
	if s := fs.post(c, r, fuse.OK); !s.Ok() {
		fs.ReleaseDir(&fuse.ReleaseIn{Fh: out.Fh})
		return s
	}
	return fuse.OK
}

// ReadDir lists entries.
func (fs *fileSystem) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) (code fuse.Status) {
	defer fs.track(filter.OpReaddir, time.Now(), &code)
	return fs.readDir(filter.OpReaddir, in, out)
}

// ReadDirPlus lists entries with their attributes, counting one lookup of
// each entry it returns (except "." and "..", which the kernel ignores).
func (fs *fileSystem) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) (code fuse.Status) {
	defer fs.track(filter.OpReaddirplus, time.Now(), &code)
	return fs.readDir(filter.OpReaddirplus, in, out)
}

// readDir serves READDIR and READDIRPLUS. With filters, entries get their
// view names, those the filters drop are skipped, and readdirplus entries
// are named and presented as a lookup would; only the rules that may act
// beneath the directory are asked (entryChain), and with none the entries
// are listed as without filters.
func (fs *fileSystem) readDir(o filter.Op, in *fuse.ReadIn, out *fuse.DirEntryList) fuse.Status {
	plus := o == filter.OpReaddirplus
	d, ok := fs.dirs.get(in.Fh)
	if !ok {
		return fuse.EBADF
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c, r, s := fs.begin(o, d.ino, &in.Caller)
	if !s.Ok() {
		return s
	}
	if c != nil {
		c = d.entryChain(c, r.Path)
	}
	// Once per request, not per entry: a directory moved out of the tree
	// (or deleted) since it was opened lists nothing more.
	if !fs.tree.Beneath(d.ino, d.fd) {
		return fuse.OK
	}
	if in.Offset != d.off {
		if _, err := unix.Seek(d.fd, int64(in.Offset), 0); err != nil {
			return fs.status("readdir", err)
		}
		d.pos, d.end, d.off, d.eof = 0, 0, in.Offset, false
	}
	for {
		if d.pos >= d.end {
			if d.eof {
				return fuse.OK
			}
			n, err := unix.Getdents(d.fd, d.buf)
			if err != nil {
				return fs.status("readdir", err)
			}
			if n == 0 {
				d.eof = true
				return fuse.OK
			}
			d.pos, d.end = 0, n
		}
		var e fuse.DirEntry
		size := e.Parse(d.buf[d.pos:d.end])
		lname, path := e.Name, ""
		if c != nil && e.Name != "." && e.Name != ".." {
			var shown bool
			if path, shown = fs.shown(c, r, &e); !shown {
				d.pos += size
				d.off = e.Off
				continue
			}
		}
		if !plus {
			if !out.AddDirEntry(e) {
				return fuse.OK
			}
		} else {
			eo := out.AddDirLookupEntry(e)
			if eo == nil {
				return fuse.OK
			}
			if e.Name != "." && e.Name != ".." {
				var st unix.Stat_t
				// An entry removed since getdents is left without a
				// node (NodeId 0), which the kernel skips.
				if child, err := fs.tree.LookupAt(d.ino, d.fd, lname, &st); err == nil {
					if c == nil {
						fs.fillEntry(child, &st, eo)
					} else {
						fs.tree.SetName(child, d.ino, e.Name)
						fs.entry(c, r, path, child, &st, eo)
					}
					out.FixMode(st.Mode)
				}
			}
		}
		d.pos += size
		d.off = e.Off
	}
}

// shown gives a listed entry its view name and reports whether the filters
// list it to r's caller, and under which path.
func (fs *fileSystem) shown(c *filter.Chain, r *filter.Request, e *fuse.DirEntry) (string, bool) {
	if c.MapsNames() {
		view, ok := c.ViewName(r.Path, e.Name)
		if !ok {
			return "", false
		}
		e.Name = view
	}
	path := joinPath(r.Path, e.Name)
	if c.HasDir() {
		de := filter.DirEntry{Name: e.Name, Path: path, Ino: e.Ino, Type: e.Mode & unix.S_IFMT}
		if !c.Keep(r, &de) {
			return "", false
		}
	}
	return path, true
}

// ReleaseDir closes a directory.
func (fs *fileSystem) ReleaseDir(in *fuse.ReleaseIn) {
	defer fs.trackNoStatus(filter.OpReleasedir, time.Now())
	if d, ok := fs.dirs.remove(in.Fh); ok {
		unix.Close(d.fd)
	}
}

// FsyncDir flushes a directory to stable storage.
func (fs *fileSystem) FsyncDir(cancel <-chan struct{}, in *fuse.FsyncIn) (code fuse.Status) {
	defer fs.track(filter.OpFsyncdir, time.Now(), &code)
	d, ok := fs.dirs.get(in.Fh)
	if !ok {
		return fuse.EBADF
	}
	return fs.status("fsyncdir", unix.Fsync(d.fd))
}
