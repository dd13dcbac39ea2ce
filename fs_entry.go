package sievefs

import (
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/internal/lower"
)

// Lookup finds a name in a directory. A missing name is answered as a
// negative entry that the kernel may cache for the entry timeout (a
// success on the wire, counted and logged as the ENOENT it is).
func (fs *fileSystem) Lookup(cancel <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) (code fuse.Status) {
	defer func(start time.Time) {
		shown := code
		if shown.Ok() && out.NodeId == 0 {
			shown = fuse.ENOENT
		}
		fs.track(filter.OpLookup, h.NodeId, name, start, &shown)
	}(time.Now())
	q := fs.newRequest()
	defer fs.freeRequest(q)
	s := fs.gateName(q, filter.OpLookup, h.NodeId, name, &h.Caller)
	if s.Ok() {
		_, s = q.pre()
	}
	if !s.Ok() {
		if !q.judged {
			return s
		}
		return q.negative(s, true, out)
	}
	var st unix.Stat_t
	ino, err := fs.tree.Lookup(q.ino, q.lname, &st)
	if err != nil {
		return q.negative(fs.status(filter.OpLookup, err), false, out)
	}
	return q.admit(ino, &st, out)
}

// Forget drops lookups the kernel no longer holds.
func (fs *fileSystem) Forget(nodeID, nlookup uint64) {
	defer fs.trackNoStatus(filter.OpForget, nodeID, "", time.Now())
	base, _ := splitNodeID(nodeID)
	fs.tree.Forget(base, nlookup)
}

// GetAttr returns the attributes of a node.
func (fs *fileSystem) GetAttr(cancel <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) (code fuse.Status) {
	defer fs.track(filter.OpGetattr, in.NodeId, "", time.Now(), &code)
	q := fs.newRequest()
	defer fs.freeRequest(q)
	if s := fs.gate(q, filter.OpGetattr, in.NodeId, &in.Caller); !s.Ok() {
		return s
	}
	answered, s := q.pre()
	if !s.Ok() {
		return q.post(s)
	}
	if answered {
		out.Attr = answeredAttr(&q.Attr)
		out.SetTimeout(0)
		return q.post(fuse.OK)
	}
	return q.attrReply(out)
}

// answeredAttr returns the FUSE attributes of a filter's answer.
func answeredAttr(a *filter.Attr) fuse.Attr {
	return fuse.Attr{Ino: a.Ino, Mode: a.Mode, Nlink: a.Nlink, Owner: fuse.Owner{Uid: a.Uid, Gid: a.Gid}, Size: a.Size}
}

// attrReply answers GETATTR and SETATTR with the node's attributes now, as
// the filters present them to the caller.
func (q *request) attrReply(out *fuse.AttrOut) fuse.Status {
	fs := q.fs
	var st unix.Stat_t
	if err := fs.tree.Stat(q.ino, &st); err != nil {
		return q.post(fs.status(q.Op, err))
	}
	fillAttr(&st, &out.Attr)
	out.SetTimeout(fs.ttl(q.ino))
	if !fs.paths {
		return fuse.OK
	}
	present(q.chain, &q.Request, q.Path, &out.Attr)
	out.SetTimeout(fs.timeoutFor(q.chain, q.Path, q.ino))
	q.Attr = filterAttr(&out.Attr)
	return q.post(fuse.OK)
}

// SetAttr changes mode, owner, size and times, in that order, and returns the
// attributes after the change.
func (fs *fileSystem) SetAttr(cancel <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) (code fuse.Status) {
	defer fs.track(filter.OpSetattr, in.NodeId, "", time.Now(), &code)
	q := fs.newRequest()
	defer fs.freeRequest(q)
	if s := fs.gate(q, filter.OpSetattr, in.NodeId, &in.Caller); !s.Ok() {
		return s
	}
	q.SetAttr = setAttrOf(in)
	q.Mode, _ = in.GetMode()
	answered, s := q.pre()
	if !s.Ok() {
		return q.post(s)
	}
	if !answered {
		if err := fs.setAttr(q.ino, in, q.SetAttr, q.Mode); err != nil {
			return q.post(fs.status(filter.OpSetattr, err))
		}
	}
	return q.attrReply(out)
}

// setAttrOf says what a SETATTR request changes.
func setAttrOf(in *fuse.SetAttrIn) filter.SetAttr {
	var ch filter.SetAttr
	_, ch.Mode = in.GetMode()
	ch.UidValue, ch.Uid = in.GetUID()
	ch.GidValue, ch.Gid = in.GetGID()
	ch.SizeValue, ch.Size = in.GetSize()
	ch.Atime = in.Valid&fuse.FATTR_ATIME != 0
	ch.Mtime = in.Valid&fuse.FATTR_MTIME != 0
	return ch
}

// setAttr applies the changes ch (from in, as the filters left them).
func (fs *fileSystem) setAttr(ino *lower.Inode, in *fuse.SetAttrIn, ch filter.SetAttr, mode uint32) error {
	if ch.Mode {
		if err := fs.tree.Chmod(ino, mode); err != nil {
			return err
		}
	}
	if ch.Uid || ch.Gid {
		u, g := -1, -1
		if ch.Uid {
			u = int(ch.UidValue)
		}
		if ch.Gid {
			g = int(ch.GidValue)
		}
		if err := fs.tree.Chown(ino, u, g); err != nil {
			return err
		}
	}
	if in.Valid&setattrChanges == 0 || in.Valid&fuse.FATTR_CTIME != 0 {
		// chown(path, -1, -1) reaches the daemon with nothing to change;
		// it still updates ctime, as it does on the lower filesystem.
		if err := fs.tree.Chown(ino, -1, -1); err != nil {
			return err
		}
	}
	if ch.Size {
		if err := fs.truncate(ino, in, int64(ch.SizeValue)); err != nil {
			return err
		}
		if in.Valid&fuse.FATTR_KILL_SUIDGID != 0 && !ch.Mode {
			fs.killPriv(ino)
		}
	}
	if ch.Atime || ch.Mtime {
		times := [2]unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
		if ch.Atime {
			times[0] = setTime(in.Valid&fuse.FATTR_ATIME_NOW != 0, in.Atime, in.Atimensec)
		}
		if ch.Mtime {
			times[1] = setTime(in.Valid&fuse.FATTR_MTIME_NOW != 0, in.Mtime, in.Mtimensec)
		}
		if err := fs.tree.Utimens(ino, &times); err != nil {
			return err
		}
	}
	return nil
}

// setattrChanges are the SETATTR bits that change something.
const setattrChanges = fuse.FATTR_MODE | fuse.FATTR_UID | fuse.FATTR_GID | fuse.FATTR_SIZE | fuse.FATTR_ATIME | fuse.FATTR_MTIME

func setTime(now bool, sec uint64, nsec uint32) unix.Timespec {
	if now {
		return unix.Timespec{Nsec: unix.UTIME_NOW}
	}
	return unix.Timespec{Sec: int64(sec), Nsec: int64(nsec)}
}

// truncate sets the size through the open file when the kernel names one
// that the daemon holds writable, else through a fresh descriptor.
func (fs *fileSystem) truncate(ino *lower.Inode, in *fuse.SetAttrIn, size int64) error {
	if fh, ok := in.GetFh(); ok {
		if f, ok := fs.files.get(fh); ok && f.file != nil && f.flags&unix.O_ACCMODE != unix.O_RDONLY {
			return f.file.Truncate(size)
		}
	}
	return fs.tree.Truncate(ino, size)
}

// gateMake starts an operation that makes name in the directory dir: its
// own pre-filters (which may rewrite the mode and, for create, the flags),
// then those of the lookup decision for the node it makes.
func (fs *fileSystem) gateMake(q *request, o filter.Op, dir uint64, name string, typ, mode uint32, flags int, c *fuse.Caller) fuse.Status {
	if s := fs.gateName(q, o, dir, name, c); !s.Ok() {
		return s
	}
	q.Type, q.Mode, q.Flags = typ, mode, flags
	if _, s := q.pre(); !s.Ok() {
		return s
	}
	return q.preLookup()
}

// made answers an operation that made (or, for create without O_EXCL,
// found) the node ino (err from the lower tree): the lookup decision, then
// the operation's own post-filters. When they refuse it, the lookup the
// tree counted is dropped; what the lower tree made stays (see
// filter.PostFilter).
func (q *request) made(ino *lower.Inode, st *unix.Stat_t, err error, out *fuse.EntryOut) fuse.Status {
	if err != nil {
		return q.post(q.fs.status(q.Op, err))
	}
	if s := q.admit(ino, st, out); !s.Ok() {
		return q.post(s)
	}
	q.Attr = filterAttr(&out.Attr)
	s := q.post(fuse.OK)
	if !s.Ok() {
		q.fs.tree.Forget(ino.ID, 1)
	}
	return s
}

// Mknod makes a device, FIFO, socket or regular file.
func (fs *fileSystem) Mknod(cancel <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) (code fuse.Status) {
	defer fs.track(filter.OpMknod, in.NodeId, name, time.Now(), &code)
	q := fs.newRequest()
	defer fs.freeRequest(q)
	if s := fs.gateMake(q, filter.OpMknod, in.NodeId, name, in.Mode&unix.S_IFMT, in.Mode, 0, &in.Caller); !s.Ok() {
		return q.post(s)
	}
	var st unix.Stat_t
	ino, err := fs.tree.Mknod(q.ino, q.lname, q.Mode, in.Rdev, fs.owner(&in.Caller), &st)
	return q.made(ino, &st, err, out)
}

// Mkdir makes a directory.
func (fs *fileSystem) Mkdir(cancel <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) (code fuse.Status) {
	defer fs.track(filter.OpMkdir, in.NodeId, name, time.Now(), &code)
	q := fs.newRequest()
	defer fs.freeRequest(q)
	if s := fs.gateMake(q, filter.OpMkdir, in.NodeId, name, unix.S_IFDIR, in.Mode, 0, &in.Caller); !s.Ok() {
		return q.post(s)
	}
	var st unix.Stat_t
	ino, err := fs.tree.Mkdir(q.ino, q.lname, q.Mode, fs.owner(&in.Caller), &st)
	return q.made(ino, &st, err, out)
}

// Symlink makes a symbolic link; the target is stored as the client gave it
// (or a pre-filter rewrote it).
func (fs *fileSystem) Symlink(cancel <-chan struct{}, h *fuse.InHeader, target, name string, out *fuse.EntryOut) (code fuse.Status) {
	defer fs.track(filter.OpSymlink, h.NodeId, name, time.Now(), &code)
	q := fs.newRequest()
	defer fs.freeRequest(q)
	s := fs.gateName(q, filter.OpSymlink, h.NodeId, name, &h.Caller)
	if s.Ok() {
		q.Type, q.Target = unix.S_IFLNK, target
		if _, s = q.pre(); s.Ok() {
			s = q.preLookup()
		}
	}
	if !s.Ok() {
		return q.post(s)
	}
	var st unix.Stat_t
	ino, err := fs.tree.Symlink(q.ino, q.lname, q.Target, fs.owner(&h.Caller), &st)
	return q.made(ino, &st, err, out)
}

// Link makes a hard link. Its filters see the linked node's path as Path
// and the new name's as NewPath; the lookup decision and the post-filters
// see the node under its new name (Path) and the old one as NewPath.
func (fs *fileSystem) Link(cancel <-chan struct{}, in *fuse.LinkIn, name string, out *fuse.EntryOut) (code fuse.Status) {
	defer fs.track(filter.OpLink, in.NodeId, name, time.Now(), &code)
	q := fs.newRequest()
	defer fs.freeRequest(q)
	if s := fs.gateName(q, filter.OpLink, in.NodeId, name, &in.Caller); !s.Ok() {
		return q.post(s)
	}
	base, _ := splitNodeID(in.Oldnodeid)
	target := fs.tree.Get(base)
	if target == nil {
		return q.post(fuse.Status(unix.ESTALE))
	}
	q.NewPath, q.Type = q.Path, target.Type
	if fs.paths {
		p, ok := fs.tree.ViewPath(target)
		if !ok {
			return q.post(fuse.Status(unix.ESTALE))
		}
		q.Path = p
	}
	if _, s := q.pre(); !s.Ok() {
		return q.post(s)
	}
	// The new name is the node's path from now on.
	q.Path, q.NewPath = q.NewPath, q.Path
	if s := q.preLookup(); !s.Ok() {
		return q.post(s)
	}
	var st unix.Stat_t
	ino, err := fs.tree.Link(target, q.ino, q.lname, &st)
	return q.made(ino, &st, err, out)
}

// remove runs unlink or rmdir.
func (fs *fileSystem) remove(o filter.Op, h *fuse.InHeader, name string, rm func(*lower.Inode, string) error) fuse.Status {
	q := fs.newRequest()
	defer fs.freeRequest(q)
	if s := fs.gateName(q, o, h.NodeId, name, &h.Caller); !s.Ok() {
		return q.post(s)
	}
	if o == filter.OpRmdir {
		q.Type = unix.S_IFDIR
	}
	answered, s := q.pre()
	if !s.Ok() || answered {
		return q.post(s)
	}
	return q.post(fs.status(o, rm(q.ino, q.lname)))
}

// Unlink removes a name.
func (fs *fileSystem) Unlink(cancel <-chan struct{}, h *fuse.InHeader, name string) (code fuse.Status) {
	defer fs.track(filter.OpUnlink, h.NodeId, name, time.Now(), &code)
	return fs.remove(filter.OpUnlink, h, name, fs.tree.Unlink)
}

// Rmdir removes an empty directory.
func (fs *fileSystem) Rmdir(cancel <-chan struct{}, h *fuse.InHeader, name string) (code fuse.Status) {
	defer fs.track(filter.OpRmdir, h.NodeId, name, time.Now(), &code)
	return fs.remove(filter.OpRmdir, h, name, fs.tree.Rmdir)
}

// Rename renames, honouring RENAME_NOREPLACE and RENAME_EXCHANGE. Both names
// are judged by the one chain the request started with.
func (fs *fileSystem) Rename(cancel <-chan struct{}, in *fuse.RenameIn, oldName, newName string) (code fuse.Status) {
	defer fs.track(filter.OpRename, in.NodeId, oldName, time.Now(), &code)
	q := fs.newRequest()
	defer fs.freeRequest(q)
	if s := fs.gateName(q, filter.OpRename, in.NodeId, oldName, &in.Caller); !s.Ok() {
		return q.post(s)
	}
	base, _ := splitNodeID(in.Newdir)
	newParent := fs.tree.Get(base)
	if newParent == nil {
		return q.post(fuse.Status(unix.ESTALE))
	}
	lnew := newName
	if fs.paths {
		dir, ok := fs.tree.ViewPath(newParent)
		if !ok {
			return q.post(fuse.Status(unix.ESTALE))
		}
		q.NewPath = joinPath(dir, newName)
		var err error
		if lnew, err = q.chain.LowerName(dir, newName); err != nil {
			return q.post(fs.status(filter.OpRename, err))
		}
	}
	// What moves, to name it anew once moved (and its type, for filters).
	var m lower.Moved
	exchange := in.Flags&unix.RENAME_EXCHANGE != 0
	if fs.paths {
		if err := fs.tree.StatAt(q.ino, q.lname, &m.Src); err != nil {
			return q.post(fs.status(filter.OpRename, err))
		}
		m.HaveSrc = true
		if exchange {
			if err := fs.tree.StatAt(newParent, lnew, &m.Dst); err != nil {
				return q.post(fs.status(filter.OpRename, err))
			}
			m.HaveDst = true
			// An exchange also moves the destination to the source's place.
			back := q.Request
			back.Path, back.NewPath, back.Type = q.NewPath, q.Path, m.Dst.Mode&unix.S_IFMT
			if answered, s := fs.runPre(q.chain, &back); !s.Ok() || answered {
				return q.post(s)
			}
		}
		q.Type = m.Src.Mode & unix.S_IFMT
	}
	answered, s := q.pre()
	if !s.Ok() || answered {
		return q.post(s)
	}
	if !fs.paths {
		return fs.status(filter.OpRename, fs.tree.Rename(q.ino, q.lname, newParent, lnew, in.Flags))
	}
	if err := fs.tree.RenameMoved(q.ino, q.lname, newParent, lnew, in.Flags, &m); err != nil {
		return q.post(fs.status(filter.OpRename, err))
	}
	if ino := fs.tree.ByKey(&m.Src); ino != nil {
		fs.tree.SetName(ino, newParent, newName)
	}
	if exchange {
		if ino := fs.tree.ByKey(&m.Dst); ino != nil {
			fs.tree.SetName(ino, q.ino, oldName)
		}
	}
	return q.post(fuse.OK)
}

// Readlink returns a symlink's target.
func (fs *fileSystem) Readlink(cancel <-chan struct{}, h *fuse.InHeader) (_ []byte, code fuse.Status) {
	defer fs.track(filter.OpReadlink, h.NodeId, "", time.Now(), &code)
	q := fs.newRequest()
	defer fs.freeRequest(q)
	if s := fs.gate(q, filter.OpReadlink, h.NodeId, &h.Caller); !s.Ok() {
		return nil, s
	}
	answered, s := q.pre()
	if s.Ok() && !answered {
		target, err := fs.tree.Readlink(q.ino)
		if !q.chain.PostSees(filter.OpReadlink) {
			return target, fs.status(filter.OpReadlink, err)
		}
		q.Target, s = string(target), fs.status(filter.OpReadlink, err)
	}
	if s = q.post(s); !s.Ok() {
		return nil, s
	}
	return []byte(q.Target), fuse.OK
}

// simple runs an operation on a node that has no output but its result;
// setup fills the request's inputs.
func (fs *fileSystem) simple(o filter.Op, id uint64, caller *fuse.Caller, setup func(*request), run func(*lower.Inode) error) fuse.Status {
	q := fs.newRequest()
	defer fs.freeRequest(q)
	if s := fs.gate(q, o, id, caller); !s.Ok() {
		return s
	}
	if setup != nil {
		setup(q)
	}
	answered, s := q.pre()
	if s.Ok() && !answered {
		s = fs.status(o, run(q.ino))
	}
	return q.post(s)
}

// Access is only sent without default_permissions, when the daemon runs as
// the only user of the mount; it checks with the daemon's credentials.
func (fs *fileSystem) Access(cancel <-chan struct{}, in *fuse.AccessIn) (code fuse.Status) {
	defer fs.track(filter.OpAccess, in.NodeId, "", time.Now(), &code)
	return fs.simple(filter.OpAccess, in.NodeId, &in.Caller, nil, func(ino *lower.Inode) error {
		return fs.tree.Access(ino, in.Mask)
	})
}

// StatFs reports the lower filesystem's statistics.
func (fs *fileSystem) StatFs(cancel <-chan struct{}, h *fuse.InHeader, out *fuse.StatfsOut) (code fuse.Status) {
	defer fs.track(filter.OpStatfs, h.NodeId, "", time.Now(), &code)
	q := fs.newRequest()
	defer fs.freeRequest(q)
	if s := fs.gate(q, filter.OpStatfs, h.NodeId, &h.Caller); !s.Ok() {
		return s
	}
	if _, s := q.pre(); !s.Ok() {
		return q.post(s)
	}
	var st unix.Statfs_t
	if err := fs.tree.Statfs(q.ino, &st); err != nil {
		return q.post(fs.status(filter.OpStatfs, err))
	}
	*out = fuse.StatfsOut{
		Blocks:  st.Blocks,
		Bfree:   st.Bfree,
		Bavail:  st.Bavail,
		Files:   st.Files,
		Ffree:   st.Ffree,
		Bsize:   uint32(st.Bsize),
		NameLen: uint32(st.Namelen),
		Frsize:  uint32(st.Frsize),
	}
	return q.post(fuse.OK)
}

// GetXAttr reads an extended attribute; with an empty dest it returns the
// size only.
func (fs *fileSystem) GetXAttr(cancel <-chan struct{}, h *fuse.InHeader, attr string, dest []byte) (_ uint32, code fuse.Status) {
	defer fs.track(filter.OpGetxattr, h.NodeId, "", time.Now(), &code)
	q := fs.newRequest()
	defer fs.freeRequest(q)
	if s := fs.gate(q, filter.OpGetxattr, h.NodeId, &h.Caller); !s.Ok() {
		return 0, s
	}
	q.Xattr = attr
	return q.valueReply(dest, func(buf []byte) (int, error) { return fs.tree.GetXattr(q.ino, q.Xattr, buf) })
}

// ListXAttr lists extended attribute names.
func (fs *fileSystem) ListXAttr(cancel <-chan struct{}, h *fuse.InHeader, dest []byte) (_ uint32, code fuse.Status) {
	defer fs.track(filter.OpListxattr, h.NodeId, "", time.Now(), &code)
	q := fs.newRequest()
	defer fs.freeRequest(q)
	if s := fs.gate(q, filter.OpListxattr, h.NodeId, &h.Caller); !s.Ok() {
		return 0, s
	}
	return q.valueReply(dest, func(buf []byte) (int, error) { return fs.tree.ListXattr(q.ino, buf) })
}

// valueReply answers GETXATTR and LISTXATTR, whose value (fetched by get,
// which returns ERANGE when buf is too small and the size for an empty buf)
// goes into dest; an empty dest asks for the size only. A pre-filter may
// answer with q.Value; post-filters see the whole value whatever the size of
// dest.
func (q *request) valueReply(dest []byte, get func(buf []byte) (int, error)) (uint32, fuse.Status) {
	answered, s := q.pre()
	if !s.Ok() {
		return 0, q.post(s)
	}
	if !answered && !q.chain.PostSees(q.Op) {
		return q.fs.xattrCall(q.Op, dest, get)
	}
	if !answered {
		buf := make([]byte, max(len(dest), 4096))
		n, s := q.fs.xattrCall(q.Op, buf, get)
		for s == fuse.ERANGE {
			buf = make([]byte, n)
			n, s = q.fs.xattrCall(q.Op, buf, get)
		}
		if !s.Ok() {
			return 0, q.post(s)
		}
		q.Value = buf[:n]
	}
	if s := q.post(fuse.OK); !s.Ok() {
		return 0, s
	}
	if len(dest) == 0 {
		return uint32(len(q.Value)), fuse.OK
	}
	if len(q.Value) > len(dest) {
		return uint32(len(q.Value)), fuse.ERANGE
	}
	return uint32(copy(dest, q.Value)), fuse.OK
}

// xattrCall runs get into dest; ERANGE comes with the size needed.
func (fs *fileSystem) xattrCall(o filter.Op, dest []byte, get func(buf []byte) (int, error)) (uint32, fuse.Status) {
	n, err := get(dest)
	if err == unix.ERANGE {
		n, err = get(nil)
		if err == nil {
			return uint32(n), fuse.ERANGE
		}
	}
	return uint32(n), fs.status(o, err)
}

// SetXAttr sets an extended attribute.
func (fs *fileSystem) SetXAttr(cancel <-chan struct{}, in *fuse.SetXAttrIn, attr string, data []byte) (code fuse.Status) {
	defer fs.track(filter.OpSetxattr, in.NodeId, "", time.Now(), &code)
	return fs.simple(filter.OpSetxattr, in.NodeId, &in.Caller, func(q *request) { q.Xattr = attr }, func(ino *lower.Inode) error {
		return fs.tree.SetXattr(ino, attr, data, int(in.Flags))
	})
}

// RemoveXAttr removes an extended attribute.
func (fs *fileSystem) RemoveXAttr(cancel <-chan struct{}, h *fuse.InHeader, attr string) (code fuse.Status) {
	defer fs.track(filter.OpRemovexattr, h.NodeId, "", time.Now(), &code)
	return fs.simple(filter.OpRemovexattr, h.NodeId, &h.Caller, func(q *request) { q.Xattr = attr }, func(ino *lower.Inode) error {
		return fs.tree.RemoveXattr(ino, attr)
	})
}

// Statx returns extended attributes (birth time among them).
func (fs *fileSystem) Statx(cancel <-chan struct{}, in *fuse.StatxIn, out *fuse.StatxOut) (code fuse.Status) {
	defer fs.track(filter.OpStatx, in.NodeId, "", time.Now(), &code)
	q := fs.newRequest()
	defer fs.freeRequest(q)
	if s := fs.gate(q, filter.OpStatx, in.NodeId, &in.Caller); !s.Ok() {
		return s
	}
	answered, s := q.pre()
	if !s.Ok() {
		return q.post(s)
	}
	if answered {
		a := &q.Attr
		out.Statx = fuse.Statx{
			Mask: unix.STATX_TYPE | unix.STATX_MODE | unix.STATX_NLINK | unix.STATX_UID | unix.STATX_GID | unix.STATX_INO | unix.STATX_SIZE,
			Ino:  a.Ino, Mode: uint16(a.Mode), Nlink: a.Nlink, Uid: a.Uid, Gid: a.Gid, Size: a.Size,
		}
		out.SetTimeout(0)
		return q.post(fuse.OK)
	}
	var stx unix.Statx_t
	if err := fs.tree.Statx(q.ino, in.SxMask|unix.STATX_BASIC_STATS, &stx); err != nil {
		return q.post(fs.status(filter.OpStatx, err))
	}
	sxTime := func(t unix.StatxTimestamp) fuse.SxTime { return fuse.SxTime{Sec: uint64(t.Sec), Nsec: t.Nsec} }
	out.Statx = fuse.Statx{
		Mask:           stx.Mask,
		Blksize:        stx.Blksize,
		Attributes:     stx.Attributes,
		Nlink:          stx.Nlink,
		Uid:            stx.Uid,
		Gid:            stx.Gid,
		Mode:           stx.Mode,
		Ino:            stx.Ino,
		Size:           stx.Size,
		Blocks:         stx.Blocks,
		AttributesMask: stx.Attributes_mask,
		Atime:          sxTime(stx.Atime),
		Btime:          sxTime(stx.Btime),
		Ctime:          sxTime(stx.Ctime),
		Mtime:          sxTime(stx.Mtime),
		RdevMajor:      stx.Rdev_major,
		RdevMinor:      stx.Rdev_minor,
		DevMajor:       stx.Dev_major,
		DevMinor:       stx.Dev_minor,
	}
	out.SetTimeout(fs.ttl(q.ino))
	if !fs.paths {
		return fuse.OK
	}
	a := fuse.Attr{Ino: stx.Ino, Mode: uint32(stx.Mode), Nlink: stx.Nlink, Owner: fuse.Owner{Uid: stx.Uid, Gid: stx.Gid}, Size: stx.Size, Blocks: stx.Blocks}
	present(q.chain, &q.Request, q.Path, &a)
	out.Statx.Ino, out.Statx.Mode, out.Statx.Nlink, out.Statx.Uid, out.Statx.Gid, out.Statx.Size = a.Ino, uint16(a.Mode), a.Nlink, a.Uid, a.Gid, a.Size
	out.Statx.Blocks = a.Blocks
	out.SetTimeout(fs.timeoutFor(q.chain, q.Path, q.ino))
	q.Attr = filterAttr(&a)
	return q.post(fuse.OK)
}
