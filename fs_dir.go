package sievefs

import (
	"sync"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

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
}

const dirBufSize = 32 << 10

// OpenDir opens a directory.
func (fs *fileSystem) OpenDir(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) (code fuse.Status) {
	defer fs.track(opOpendir, time.Now(), &code)
	ino, s := fs.inode(in.NodeId)
	if !s.Ok() {
		return s
	}
	fd, err := fs.tree.OpenDir(ino)
	if err != nil {
		return fs.status("opendir", err)
	}
	out.Fh = fs.dirs.add(&dirHandle{ino: ino, fd: fd, buf: make([]byte, dirBufSize)})
	return fuse.OK
}

// ReadDir lists entries.
func (fs *fileSystem) ReadDir(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) (code fuse.Status) {
	defer fs.track(opReaddir, time.Now(), &code)
	return fs.readDir(in, out, false)
}

// ReadDirPlus lists entries with their attributes, counting one lookup of
// each entry it returns (except "." and "..", which the kernel ignores).
func (fs *fileSystem) ReadDirPlus(cancel <-chan struct{}, in *fuse.ReadIn, out *fuse.DirEntryList) (code fuse.Status) {
	defer fs.track(opReaddirplus, time.Now(), &code)
	return fs.readDir(in, out, true)
}

func (fs *fileSystem) readDir(in *fuse.ReadIn, out *fuse.DirEntryList, plus bool) fuse.Status {
	d, ok := fs.dirs.get(in.Fh)
	if !ok {
		return fuse.EBADF
	}
	d.mu.Lock()
	defer d.mu.Unlock()
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
				if child, err := fs.tree.LookupAt(d.fd, e.Name, &st); err == nil {
					fs.fillEntry(child, &st, eo)
					out.FixMode(st.Mode)
				}
			}
		}
		d.pos += size
		d.off = e.Off
	}
}

// ReleaseDir closes a directory.
func (fs *fileSystem) ReleaseDir(in *fuse.ReleaseIn) {
	defer fs.trackNoStatus(opReleasedir, time.Now())
	if d, ok := fs.dirs.remove(in.Fh); ok {
		unix.Close(d.fd)
	}
}

// FsyncDir flushes a directory to stable storage.
func (fs *fileSystem) FsyncDir(cancel <-chan struct{}, in *fuse.FsyncIn) (code fuse.Status) {
	defer fs.track(opFsyncdir, time.Now(), &code)
	d, ok := fs.dirs.get(in.Fh)
	if !ok {
		return fuse.EBADF
	}
	return fs.status("fsyncdir", unix.Fsync(d.fd))
}
