package sievefs

import (
	"errors"
	"io"
	"sync"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/internal/lower"
	"github.com/sievefs/sievefs/internal/passthrough"
)

// openFile is one open of a regular file.
//
// A passthrough open holds no descriptor: the kernel reads and writes the
// backing file itself. The few operations it still sends for such a file
// (fsync, fallocate, lseek, copy_file_range) get a descriptor opened for the
// occasion, so that descriptors stay bounded however many files clients keep
// open. A daemon-served open holds its descriptor until release.
type openFile struct {
	ino         *lower.Inode
	flags       int         // open(2) flags the client asked for
	file        *lower.File // nil for passthrough
	passthrough bool
	// stream serves the reads and writes of a file data rules see; nil
	// otherwise.
	stream filter.Stream
	// variant is set for opens of data variants (see nodeID), which the
	// passthrough manager does not know of.
	variant bool
	// uid is the opener's: the descriptors held for the open count in that
	// user's share (see heldFDs).
	uid uint32

	lockMu sync.Mutex
	// lock holds a passthrough open's flock, nil until its first flock;
	// a daemon-served open takes its flocks on file.
	lock *lower.File
}

// openReply fills the OPEN/CREATE reply for q.ino, an open no data rule
// claims. made, when not nil, is the file already open with the client's
// flags (from CREATE); openReply takes it over.
func (q *request) openReply(made *lower.File, out *fuse.OpenOut) fuse.Status {
	fs, ino, flags, uid := q.fs, q.ino, q.Flags, q.Caller.Uid
	// Locks are the kernel's (see docs/usage.md): nothing in FLUSH needs the daemon.
	out.OpenFlags = fuse.FOPEN_NOFLUSH
	if fs.pt != nil {
		if id, ok := fs.passthroughOpen(ino, flags, made); ok {
			made.Close()
			out.BackingID = id
			out.OpenFlags |= fuse.FOPEN_PASSTHROUGH
			out.Fh = q.addFile(&openFile{ino: ino, flags: flags, passthrough: true, uid: uid})
			return fuse.OK
		}
		// A daemon-served open of a file that may also be open in
		// passthrough mode must not use the page cache (the kernel's
		// per-inode I/O modes).
		out.OpenFlags |= fuse.FOPEN_DIRECT_IO
	} else {
		// Without passthrough the page cache serves warm reads. It is
		// kept across opens: the kernel drops it when it sees the file's
		// size or mtime change (FUSE_AUTO_INVAL_DATA).
		if fs.opts.Cache == CacheNever {
			out.OpenFlags |= fuse.FOPEN_DIRECT_IO
		} else {
			out.OpenFlags |= fuse.FOPEN_KEEP_CACHE
		}
	}
	f := &openFile{ino: ino, flags: flags, file: made, uid: uid}
	if s := fs.holdFD(q.Op, f); !s.Ok() {
		fs.releaseDaemonMode(f)
		return s
	}
	fs.daemonOpens.Add(1)
	fs.daemonServed.Add(1)
	out.Fh = q.addFile(f)
	return fuse.OK
}

// holdFD gives the daemon-served open f its lower file (f.file, or one
// opened now), counted in the opener's share of held descriptors. When the
// share is used up, or the open fails, a file f came with is closed.
func (fs *fileSystem) holdFD(o filter.Op, f *openFile) fuse.Status {
	if e := fs.held.take(f.uid); e != 0 {
		f.file.Close()
		f.file = nil
		// Debug, not warn: a caller looping on its refused opens must not
		// fill the log (Status.Descriptors.Refused counts them).
		fs.log.Debug("descriptor share used up: open refused", "uid", f.uid, "errno", errnoLabel(e))
		return fuse.Status(e)
	}
	if f.file == nil {
		file, err := fs.tree.OpenFile(f.ino, f.flags)
		if err != nil {
			fs.held.give(f.uid)
			return fs.status(o, err)
		}
		f.file = file
	}
	return fuse.OK
}

// passthroughOpen gets the inode's backing ID for a new open, or records a
// daemon-served open and returns false. Inodes whose opens are all
// passthrough or all daemon-served are the kernel's rule (see
// passthrough.ErrDaemonServed). Every passthrough open may write without
// the daemon: the set-ID rule holds for it by the backing file's
// credentials (see noFsetid).
func (fs *fileSystem) passthroughOpen(ino *lower.Inode, flags int, made *lower.File) (int32, bool) {
	for {
		id, err := fs.pt.Acquire(ino.ID, func() (int, error) {
			var f *lower.File
			var err error
			if made != nil {
				f, err = made.Dup()
			} else {
				f, err = fs.tree.OpenFile(ino, flags)
			}
			if err != nil {
				return -1, err
			}
			return f.Detach(), nil
		})
		if err == nil {
			return id, true
		}
		if !errors.Is(err, passthrough.ErrBudget) && !errors.Is(err, passthrough.ErrDaemonServed) {
			fs.log.Warn("passthrough refused, serving from the daemon", "op", "open", "inode", ino.ID, "err", err)
		}
		if fs.pt.ServeByDaemon(ino.ID) {
			return 0, false
		}
		// The inode got a backing file meanwhile: every open must share it.
		if id, ok := fs.pt.Share(ino.ID); ok {
			return id, true
		}
	}
}

// Open opens a file.
func (fs *fileSystem) Open(cancel <-chan struct{}, in *fuse.OpenIn, out *fuse.OpenOut) (code fuse.Status) {
	defer fs.track(filter.OpOpen, in.NodeId, "", time.Now(), &code)
	q := fs.newRequest()
	defer fs.freeRequest(q)
	if s := fs.gate(q, filter.OpOpen, in.NodeId, &in.Caller); !s.Ok() {
		return s
	}
	q.Flags = int(in.Flags)
	if _, s := q.pre(); !s.Ok() {
		return q.post(s)
	}
	if s := q.open(q.mask, nil, out); !s.Ok() {
		return q.post(s)
	}
	if in.Mode&fuse.OPEN_KILL_SUIDGID != 0 {
		fs.killPriv(q.ino)
	}
	if s := q.post(fuse.OK); !s.Ok() {
		fs.Release(cancel, &fuse.ReleaseIn{Fh: out.Fh})
		return s
	}
	return fuse.OK
}

// open answers OPEN and CREATE of q.ino with the flags q.Flags: through the
// streams of the data rules that claim the file for the caller, asked now
// (the node ID's mask says which rules claimed it when it was looked up),
// else with openReply. A caller the data rules claim the file for is served
// through their streams only on its own node (a data variant): on the plain
// node, whose page cache and backing file other callers share, its open is
// refused. made, when not nil, is the file already open (from CREATE),
// which open takes over.
func (q *request) open(mask uint8, made *lower.File, out *fuse.OpenOut) fuse.Status {
	fs, ino, flags := q.fs, q.ino, q.Flags
	variant := mask != 0
	if ino.Type == unix.S_IFREG && fs.paths && q.chain.HasData() {
		// Asked again: the caller may not be the one the node was
		// looked up for, or the policy may have changed since.
		mask = claims(q.chain, q.Caller, q.Path)
	}
	if mask == 0 && !variant {
		return q.openReply(made, out)
	}
	if !variant {
		fs.log.Warn("a caller claimed by data rules reached the plain node; refusing the open", "inode", ino.ID, "path", q.Path, "uid", q.Caller.Uid)
		made.Close()
		return fuse.Status(unix.EACCES)
	}
	f := &openFile{ino: ino, flags: flags, file: made, uid: q.Caller.Uid, variant: true}
	if s := fs.holdFD(q.Op, f); !s.Ok() {
		return s
	}
	if mask != 0 {
		st, err := q.chain.Open(&q.Request, streamFile{f.file}, mask)
		if err != nil {
			f.file.Close()
			fs.held.give(f.uid)
			return fs.status(q.Op, err)
		}
		f.stream = st
	}
	// The kernel must ask for every read: the stream decides what each
	// caller sees.
	out.OpenFlags = fuse.FOPEN_NOFLUSH | fuse.FOPEN_DIRECT_IO
	fs.daemonOpens.Add(1)
	fs.daemonServed.Add(1)
	out.Fh = q.addFile(f)
	return fuse.OK
}

// Create makes and opens a regular file.
func (fs *fileSystem) Create(cancel <-chan struct{}, in *fuse.CreateIn, name string, out *fuse.CreateOut) (code fuse.Status) {
	defer fs.track(filter.OpCreate, in.NodeId, name, time.Now(), &code)
	q := fs.newRequest()
	defer fs.freeRequest(q)
	if s := fs.gateMake(q, filter.OpCreate, in.NodeId, name, unix.S_IFREG, in.Mode, int(in.Flags), &in.Caller); !s.Ok() {
		return q.post(s)
	}
	var st unix.Stat_t
	ino, file, err := fs.tree.Create(q.ino, q.lname, q.Flags, q.Mode, fs.owner(&in.Caller), &st)
	if err != nil {
		return q.post(fs.status(filter.OpCreate, err))
	}
	return q.openMade(cancel, ino, file, &st, in.OpenFlags, out)
}

// openMade finishes CREATE and TMPFILE, which made (or found) ino and hold
// it open as file: the lookup decision, the open, then the operation's own
// post-filters. A refusal after the lower tree made the file leaves it
// there (see filter.PostFilter).
func (q *request) openMade(cancel <-chan struct{}, ino *lower.Inode, file *lower.File, st *unix.Stat_t, openFlags uint32, out *fuse.CreateOut) fuse.Status {
	fs := q.fs
	if s := q.admit(ino, st, &out.EntryOut); !s.Ok() {
		file.Close()
		return q.post(s)
	}
	_, mask := splitNodeID(out.NodeId)
	q.ino = ino
	if s := q.open(mask, file, &out.OpenOut); !s.Ok() {
		fs.tree.Forget(ino.ID, 1)
		return q.post(s)
	}
	if out.OpenFlags&fuse.FOPEN_PASSTHROUGH != 0 && q.Flags&unix.O_ACCMODE != unix.O_RDONLY {
		out.SetAttrTimeout(0) // see addFile
	}
	if openFlags&fuse.OPEN_KILL_SUIDGID != 0 {
		fs.killPriv(ino)
	}
	q.Attr = filterAttr(&out.Attr)
	if s := q.post(fuse.OK); !s.Ok() {
		fs.Release(cancel, &fuse.ReleaseIn{Fh: out.Fh})
		fs.tree.Forget(ino.ID, 1)
		return s
	}
	return fuse.OK
}

// Tmpfile makes and opens an unnamed file (O_TMPFILE). Its filters and the
// lookup decision see the directory's path: the file has no name until it
// is linked (a link, judged then).
func (fs *fileSystem) Tmpfile(cancel <-chan struct{}, in *fuse.CreateIn, out *fuse.CreateOut) (code fuse.Status) {
	defer fs.track(filter.OpTmpfile, in.NodeId, "", time.Now(), &code)
	q := fs.newRequest()
	defer fs.freeRequest(q)
	if s := fs.gate(q, filter.OpTmpfile, in.NodeId, &in.Caller); !s.Ok() {
		return s
	}
	q.Flags, q.Mode, q.Type = int(in.Flags), in.Mode, unix.S_IFREG
	_, s := q.pre()
	if s.Ok() {
		s = q.preLookup()
	}
	if !s.Ok() {
		return q.post(s)
	}
	var st unix.Stat_t
	ino, file, err := fs.tree.Tmpfile(q.ino, q.Flags, q.Mode, fs.owner(&in.Caller), &st)
	if err != nil {
		return q.post(fs.status(filter.OpTmpfile, err))
	}
	return q.openMade(cancel, ino, file, &st, in.OpenFlags, out)
}

// file returns the open file of a handle.
func (fs *fileSystem) file(fh uint64) (*openFile, fuse.Status) {
	f, ok := fs.files.get(fh)
	if !ok {
		return nil, fuse.EBADF
	}
	return f, fuse.OK
}

// withFile runs fn with the lower file of f open with at least the given
// access mode: f's own, or for a passthrough open one opened for the call.
func (fs *fileSystem) withFile(f *openFile, accmode int, fn func(*lower.File) error) error {
	if f.file != nil {
		return fn(f.file)
	}
	file, err := fs.tree.OpenFile(f.ino, accmode)
	if err != nil {
		return err
	}
	defer file.Close()
	return fn(file)
}

// Read serves a read of a daemon-served file: through its stream when data
// rules claimed it, else spliced from the lower file.
func (fs *fileSystem) Read(cancel <-chan struct{}, in *fuse.ReadIn, buf []byte) (_ fuse.ReadResult, code fuse.Status) {
	defer fs.track(filter.OpRead, in.NodeId, "", time.Now(), &code)
	f, s := fs.file(in.Fh)
	if !s.Ok() {
		return nil, s
	}
	if f.stream == nil && f.file != nil {
		return fuse.ReadResultFd(uintptr(f.file.Fd()), int64(in.Offset), int(in.Size)), fuse.OK
	}
	// A stream, or a stray read of a passthrough open (the kernel reads
	// those itself).
	var n int
	err := fs.withFile(f, unix.O_RDONLY, func(file *lower.File) (err error) {
		n, err = f.readerAt(file).ReadAt(buf[:min(len(buf), int(in.Size))], int64(in.Offset))
		return err
	})
	if err != nil && err != io.EOF {
		return nil, fs.status(filter.OpRead, err)
	}
	return fuse.ReadResultData(buf[:n]), fuse.OK
}

// Write serves a write to a daemon-served file.
func (fs *fileSystem) Write(cancel <-chan struct{}, in *fuse.WriteIn, data []byte) (_ uint32, code fuse.Status) {
	defer fs.track(filter.OpWrite, in.NodeId, "", time.Now(), &code)
	f, s := fs.file(in.Fh)
	if !s.Ok() {
		return 0, s
	}
	if in.WriteFlags&fuse.WRITE_KILL_SUIDGID != 0 {
		fs.killPriv(f.ino)
	}
	var n int
	err := fs.withFile(f, unix.O_WRONLY, func(file *lower.File) (err error) {
		n, err = f.writerAt(file).WriteAt(data, int64(in.Offset))
		return err
	})
	if err != nil && n == 0 {
		return 0, fs.status(filter.OpWrite, err)
	}
	return uint32(n), fuse.OK
}

// Writev serves a WRITE whose data came in pieces, as one Write.
func (fs *fileSystem) Writev(cancel <-chan struct{}, in *fuse.WriteIn, data [][]byte) (uint32, fuse.Status) {
	if len(data) == 1 {
		return fs.Write(cancel, in, data[0])
	}
	var buf []byte
	for _, d := range data {
		buf = append(buf, d...)
	}
	return fs.Write(cancel, in, buf)
}

// readerAt returns what serves reads of the open f whose lower file is
// file: its stream when data rules claimed it, else the lower file.
func (f *openFile) readerAt(file *lower.File) io.ReaderAt {
	if f.stream != nil {
		return f.stream
	}
	return file
}

// writerAt returns what serves writes of the open f (see readerAt).
func (f *openFile) writerAt(file *lower.File) io.WriterAt {
	if f.stream != nil {
		return f.stream
	}
	return file
}

// Flush has nothing to do: writes are not buffered in the daemon and locks
// are the kernel's. Opens say FOPEN_NOFLUSH, so it is rarely sent.
func (fs *fileSystem) Flush(cancel <-chan struct{}, in *fuse.FlushIn) (code fuse.Status) {
	defer fs.track(filter.OpFlush, in.NodeId, "", time.Now(), &code)
	return fuse.OK
}

// Fsync flushes the lower file to stable storage.
func (fs *fileSystem) Fsync(cancel <-chan struct{}, in *fuse.FsyncIn) (code fuse.Status) {
	defer fs.track(filter.OpFsync, in.NodeId, "", time.Now(), &code)
	f, s := fs.file(in.Fh)
	if !s.Ok() {
		return s
	}
	if f.passthrough && f.flags&unix.O_ACCMODE != unix.O_RDONLY {
		// Writes through a mapping may have moved mtime (see ptWriters).
		defer fs.dropAttrs(f.ino.ID)
	}
	return fs.status(filter.OpFsync, fs.withFile(f, unix.O_RDONLY, func(file *lower.File) error {
		return file.Sync(in.FsyncFlags&1 != 0)
	}))
}

// addFile registers an open and returns its handle. The lower tree's watch
// learns of writable opens: the writes through them need no report. A
// writable passthrough open stops the kernel from caching the file's
// attributes (see ptWriters): the first of an OPEN drops what the kernel
// holds; a CREATE's reply, made before the open, is given no attribute
// timeout instead (openMade), which spares the notification.
func (q *request) addFile(f *openFile) uint64 {
	fs := q.fs
	if f.flags&unix.O_ACCMODE != unix.O_RDONLY {
		fs.tree.OpenedForWrite(f.ino)
		if f.passthrough && fs.ptWriters.add(f.ino.ID) && q.Op == filter.OpOpen {
			fs.dropAttrs(f.ino.ID)
		}
	}
	return fs.files.add(f)
}

// Release ends an open: a passthrough open drops its share of the backing
// file, a daemon-served one closes its descriptor.
func (fs *fileSystem) Release(cancel <-chan struct{}, in *fuse.ReleaseIn) {
	defer fs.trackNoStatus(filter.OpRelease, in.NodeId, "", time.Now())
	f, ok := fs.files.remove(in.Fh)
	if !ok {
		return
	}
	if f.flags&unix.O_ACCMODE != unix.O_RDONLY {
		fs.tree.ClosedForWrite(f.ino)
		if f.passthrough && fs.ptWriters.remove(f.ino.ID) {
			fs.dropAttrs(f.ino.ID)
		}
	}
	fs.closeLock(f)
	if f.passthrough {
		if err := fs.pt.Release(f.ino.ID); err != nil {
			fs.log.Warn("closing backing file", "op", "release", "inode", f.ino.ID, "err", err)
		}
		return
	}
	fs.closeDaemonServed(f)
}

// closeDaemonServed ends a daemon-served open.
func (fs *fileSystem) closeDaemonServed(f *openFile) {
	if f.stream != nil {
		if err := f.stream.Close(); err != nil {
			fs.log.Warn("closing a filter stream", "inode", f.ino.ID, "err", err)
		}
	}
	f.file.Close()
	fs.held.give(f.uid)
	fs.daemonOpens.Add(-1)
	fs.releaseDaemonMode(f)
}

// releaseDaemonMode ends the daemon-served mode the passthrough manager
// records for a daemon-served open of a plain node.
func (fs *fileSystem) releaseDaemonMode(f *openFile) {
	if fs.pt != nil && !f.variant {
		fs.pt.ReleaseDaemon(f.ino.ID)
	}
}

// Lseek answers SEEK_DATA and SEEK_HOLE. An open served through a stream
// shows its file as data from start to end: the lower file's map of holes
// is not what the stream shows, and would tell where zeroed bytes lie.
func (fs *fileSystem) Lseek(cancel <-chan struct{}, in *fuse.LseekIn, out *fuse.LseekOut) (code fuse.Status) {
	defer fs.track(filter.OpLseek, in.NodeId, "", time.Now(), &code)
	f, s := fs.file(in.Fh)
	if !s.Ok() {
		return s
	}
	return fs.status(filter.OpLseek, fs.withFile(f, unix.O_RDONLY, func(file *lower.File) error {
		if f.stream != nil {
			size, err := streamFile{file}.Size()
			if err != nil {
				return err
			}
			off, err := seekAllData(int64(in.Offset), size, int(in.Whence))
			out.Offset = uint64(off)
			return err
		}
		off, err := file.Seek(int64(in.Offset), int(in.Whence))
		out.Offset = uint64(off)
		return err
	}))
}

// seekAllData answers SEEK_DATA and SEEK_HOLE for a file of size bytes
// that is all data.
func seekAllData(off, size int64, whence int) (int64, error) {
	if off < 0 {
		return 0, unix.EINVAL
	}
	if off >= size {
		return 0, unix.ENXIO
	}
	switch whence {
	case unix.SEEK_DATA:
		return off, nil
	case unix.SEEK_HOLE:
		return size, nil
	}
	return 0, unix.EINVAL
}

// Fallocate allocates, punches or zeroes ranges of the lower file. An open
// served through a stream is refused (EOPNOTSUPP): the change would reach
// the data around the stream. posix_fallocate(3) then writes through it.
func (fs *fileSystem) Fallocate(cancel <-chan struct{}, in *fuse.FallocateIn) (code fuse.Status) {
	defer fs.track(filter.OpFallocate, in.NodeId, "", time.Now(), &code)
	f, s := fs.file(in.Fh)
	if !s.Ok() {
		return s
	}
	if f.stream != nil {
		return fuse.Status(unix.EOPNOTSUPP)
	}
	return fs.status(filter.OpFallocate, fs.withFile(f, unix.O_WRONLY, func(file *lower.File) error {
		return file.Allocate(in.Mode, int64(in.Offset), int64(in.Length))
	}))
}

// copyChunk is the most one COPY_FILE_RANGE copies through a stream; the
// caller asks again for the rest, as copy_file_range(2) allows.
const copyChunk = 1 << 20

// CopyFileRange copies between two open files: inside the lower filesystem
// when neither is served through a stream, else through their streams (the
// source's reads and the destination's writes), so that no data moves
// around the data rules.
func (fs *fileSystem) CopyFileRange(cancel <-chan struct{}, in *fuse.CopyFileRangeIn) (_ uint32, code fuse.Status) {
	defer fs.track(filter.OpCopyFileRange, in.NodeId, "", time.Now(), &code)
	src, s := fs.file(in.FhIn)
	if !s.Ok() {
		return 0, s
	}
	dst, s := fs.file(in.FhOut)
	if !s.Ok() {
		return 0, s
	}
	var n int
	err := fs.withFile(src, unix.O_RDONLY, func(sfile *lower.File) error {
		return fs.withFile(dst, unix.O_WRONLY, func(dfile *lower.File) (err error) {
			offIn, offOut := int64(in.OffIn), int64(in.OffOut)
			if src.stream == nil && dst.stream == nil {
				n, err = sfile.CopyRange(offIn, dfile, offOut, int(in.Len), int(in.Flags))
				return err
			}
			n, err = copyThrough(src.readerAt(sfile), dst.writerAt(dfile), offIn, offOut, int(min(in.Len, copyChunk)))
			return err
		})
	})
	if err != nil && n == 0 {
		return 0, fs.status(filter.OpCopyFileRange, err)
	}
	return uint32(n), fuse.OK
}

// copyThrough copies up to n bytes from r at offIn to w at offOut.
func copyThrough(r io.ReaderAt, w io.WriterAt, offIn, offOut int64, n int) (int, error) {
	buf := make([]byte, n)
	m, err := r.ReadAt(buf, offIn)
	if err != nil && err != io.EOF {
		return 0, err
	}
	return w.WriteAt(buf[:m], offOut)
}

// SetLk takes or drops a flock(2) lock without waiting. POSIX record locks
// stay with the kernel (see docs/security.md); only flock is negotiated.
func (fs *fileSystem) SetLk(cancel <-chan struct{}, in *fuse.LkIn) (code fuse.Status) {
	defer fs.track(filter.OpSetlk, in.NodeId, "", time.Now(), &code)
	return fs.flock(cancel, in, false)
}

// SetLkw takes a flock(2) lock, waiting until it is free or the client gives
// up (interrupt).
func (fs *fileSystem) SetLkw(cancel <-chan struct{}, in *fuse.LkIn) (code fuse.Status) {
	defer fs.track(filter.OpSetlkw, in.NodeId, "", time.Now(), &code)
	return fs.flock(cancel, in, true)
}

// flock applies a flock request to the lower file through a descriptor of
// the open's own, so that locks conflict with those of other opens through
// the mount and of processes using the lower tree directly.
func (fs *fileSystem) flock(cancel <-chan struct{}, in *fuse.LkIn, wait bool) fuse.Status {
	if in.LkFlags&fuse.LK_FLOCK == 0 {
		return fuse.ENOSYS
	}
	f, s := fs.file(in.Fh)
	if !s.Ok() {
		return s
	}
	var how int
	switch in.Lk.Typ {
	case unix.F_RDLCK:
		how = unix.LOCK_SH
	case unix.F_WRLCK:
		how = unix.LOCK_EX
	case unix.F_UNLCK:
		how = unix.LOCK_UN
	default:
		return fuse.EINVAL
	}
	f.lockMu.Lock()
	defer f.lockMu.Unlock()
	file := f.file
	if file == nil {
		// A passthrough open: a file of its own, so that its flocks
		// conflict with other opens'.
		if f.lock == nil {
			if how == unix.LOCK_UN {
				return fuse.OK
			}
			if e := fs.held.take(f.uid); e != 0 {
				return fuse.Status(unix.ENOLCK)
			}
			lf, err := fs.tree.OpenFile(f.ino, unix.O_RDONLY)
			if err != nil {
				fs.held.give(f.uid)
				return fs.status(filter.OpSetlk, err)
			}
			f.lock = lf
		}
		file = f.lock
	}
	// A blocking flock cannot be interrupted from here, so waiting polls.
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		err := file.Flock(how | unix.LOCK_NB)
		if err != unix.EWOULDBLOCK || !wait {
			if err == unix.EWOULDBLOCK {
				return fuse.EAGAIN
			}
			return fs.status(filter.OpSetlk, err)
		}
		select {
		case <-cancel:
			return fuse.EINTR
		case <-time.After(delay):
		}
	}
}

// closeLock drops the open's flock, if it took one.
func (fs *fileSystem) closeLock(f *openFile) {
	f.lockMu.Lock()
	defer f.lockMu.Unlock()
	if f.lock != nil {
		f.lock.Close()
		f.lock = nil
		fs.held.give(f.uid)
	}
}

// streamFile presents a lower file to the data rules' streams.
type streamFile struct{ *lower.File }

var _ filter.File = streamFile{}

// Size returns the file's size now.
func (f streamFile) Size() (int64, error) {
	var st unix.Stat_t
	if err := f.Stat(&st); err != nil {
		return 0, err
	}
	return st.Size, nil
}

// Version returns the file's identity and data state, once the writes under
// way have finished (see lower.File.StatSettled).
func (f streamFile) Version() (filter.Version, error) {
	var st unix.Stat_t
	if err := f.StatSettled(&st); err != nil {
		return filter.Version{}, err
	}
	return filter.Version{Dev: st.Dev, Ino: st.Ino, Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano()}, nil
}
