package sievefs

import (
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
	"strings"
	"time"

	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/internal/lower"
)

// Lookup finds a name in a directory. A missing name is answered as a
// negative entry that the kernel may cache for the entry timeout.
func (fs *fileSystem) Lookup(cancel <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) (code fuse.Status) {
	defer fs.track(filter.OpLookup, time.Now(), &code)
	parent, s := fs.inode(h.NodeId)
	if !s.Ok() {
		return s
	}
	c, r, lname, s := fs.beginName(filter.OpLookup, parent, name, &h.Caller)
	if s.Ok() && c != nil {
		_, s = fs.pre(c, r, false)
	}
	if !s.Ok() {
		// A name a filter refuses is not cached as absent: a policy
		// reload may show it, and the kernel cannot be told to forget
		// negative entries by name.
		return fs.post(c, r, s)
	}
	var st unix.Stat_t
	ino, err := fs.tree.Lookup(parent, lname, &st)
	if err != nil {
		return fs.negative(c, r, fs.status("lookup", err), out)
	}
	if c == nil {
		fs.fillEntry(ino, &st, out)
		return fuse.OK
	}
	return fs.newEntry(c, r, r.Path, parent, name, ino, &st, out)
}

// negative answers a lookup that found nothing: ENOENT becomes a negative
// entry the kernel may cache, unless the answer depends on the caller.
func (fs *fileSystem) negative(c *filter.Chain, r *filter.Request, code fuse.Status, out *fuse.EntryOut) fuse.Status {
	code = fs.post(c, r, code)
	if code != fuse.ENOENT {
		return code
	}
	t := fs.timeout // absent names are not watched (see ttl)
	if c != nil {
		if c.DependsOnCaller(r.Path) {
			t = 0
		}
		if !strings.Contains(r.Path, "/") {
			// A reload drops what the kernel caches under each known
			// directory, absent names included, but there is no way
			// to do that for the root's: its absent names are not
			// cached when a policy may change.
			t = 0
		}
	}
	if t == 0 {
		return code
	}
	*out = fuse.EntryOut{}
	out.SetEntryTimeout(t)
	return fuse.OK
}

// newEntry answers an operation that found or made ino as name in parent
// (path in the view): it records the name, fills the reply and runs the
// post-filters. When they turn the result into an error, the lookup the
// table counted is dropped.
func (fs *fileSystem) newEntry(c *filter.Chain, r *filter.Request, path string, parent *lower.Inode, name string, ino *lower.Inode, st *unix.Stat_t, out *fuse.EntryOut) fuse.Status {
	if c == nil {
		fs.fillEntry(ino, st, out)
		return fuse.OK
	}
	fs.tree.SetName(ino, parent, name)
	fs.entry(c, r, path, ino, st, out)
	r.Attr = filterAttr(&out.Attr)
	code := fs.post(c, r, fuse.OK)
	if !code.Ok() {
		fs.tree.Forget(ino.ID, 1)
	}
	return code
}

// Forget drops lookups the kernel no longer holds.
func (fs *fileSystem) Forget(nodeID, nlookup uint64) {
	defer fs.trackNoStatus(filter.OpForget, time.Now())
	base, _ := splitNodeID(nodeID)
	fs.tree.Forget(base, nlookup)
}

// GetAttr returns the attributes of a node.
func (fs *fileSystem) GetAttr(cancel <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) (code fuse.Status) {
	defer fs.track(filter.OpGetattr, time.Now(), &code)
	ino, s := fs.inode(in.NodeId)
	if !s.Ok() {
		return s
	}
	c, r, s := fs.begin(filter.OpGetattr, ino, &in.Caller)
	if !s.Ok() {
		return s
	}
	if c != nil {
		answered, s := fs.pre(c, r, true)
		if !s.Ok() {
			return fs.post(c, r, s)
		}
		if answered {
			a := r.Attr
			out.Attr = fuse.Attr{Ino: a.Ino, Mode: a.Mode, Nlink: a.Nlink, Owner: fuse.Owner{Uid: a.Uid, Gid: a.Gid}, Size: a.Size}
			out.SetTimeout(0)
			return fs.post(c, r, fuse.OK)
		}
	}
	return fs.attrReply(c, r, ino, out)
}

// attrReply answers GETATTR and SETATTR with the node's attributes now, as
// the filters present them to the caller.
func (fs *fileSystem) attrReply(c *filter.Chain, r *filter.Request, ino *lower.Inode, out *fuse.AttrOut) fuse.Status {
	var st unix.Stat_t
	if err := fs.tree.Stat(ino, &st); err != nil {
		return fs.post(c, r, fs.status("stat", err))
	}
	fillAttr(&st, &out.Attr)
	out.SetTimeout(fs.ttl(ino))
	if c == nil {
		return fuse.OK
	}
	present(c, r, r.Path, &out.Attr)
	out.SetTimeout(fs.timeoutFor(c, r.Path, ino))
	r.Attr = filterAttr(&out.Attr)
	return fs.post(c, r, fuse.OK)
}

// SetAttr changes mode, owner, size and times, in that order, and returns the
// attributes after the change.
func (fs *fileSystem) SetAttr(cancel <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) (code fuse.Status) {
	defer fs.track(filter.OpSetattr, time.Now(), &code)
	ino, s := fs.inode(in.NodeId)
	if !s.Ok() {
		return s
	}
	c, r, s := fs.begin(filter.OpSetattr, ino, &in.Caller)
	if !s.Ok() {
		return s
	}
	ch := setAttrOf(in)
	mode, _ := in.GetMode()
	if c != nil {
		r.SetAttr, r.Mode = ch, mode
		answered, s := fs.pre(c, r, true)
		if !s.Ok() {
			return fs.post(c, r, s)
		}
		ch, mode = r.SetAttr, r.Mode
		if answered {
			ch = filter.SetAttr{}
		}
	}
	if err := fs.setAttr(ino, in, ch, mode); err != nil {
		return fs.post(c, r, fs.status("setattr", err))
	}
	return fs.attrReply(c, r, ino, out)
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
		if f, ok := fs.files.get(fh); ok && f.fd >= 0 && f.flags&unix.O_ACCMODE != unix.O_RDONLY {
			return unix.Ftruncate(f.fd, size)
		}
	}
	return fs.tree.Truncate(ino, size)
}

// made answers an operation that made a new inode, path in the view (err
// from the lower tree).
func (fs *fileSystem) made(c *filter.Chain, r *filter.Request, path string, parent *lower.Inode, name string, ino *lower.Inode, st *unix.Stat_t, err error, out *fuse.EntryOut) fuse.Status {
	if err != nil {
		return fs.post(c, r, fs.status(r.Op.String(), err))
	}
	return fs.newEntry(c, r, path, parent, name, ino, st, out)
}

// beginMake starts an operation that makes name in parent: the filters may
// rewrite the mode (and, for create, the flags).
func (fs *fileSystem) beginMake(o filter.Op, parent *lower.Inode, name string, typ, mode uint32, flags int, caller *fuse.Caller) (*filter.Chain, *filter.Request, string, uint32, fuse.Status) {
	c, r, lname, s := fs.beginName(o, parent, name, caller)
	if c == nil || !s.Ok() {
		if r == nil {
			r = &filter.Request{Op: o}
		}
		return c, r, lname, mode, s
	}
	r.Type, r.Mode, r.Flags = typ, mode, flags
	if _, s := fs.pre(c, r, false); !s.Ok() {
		return c, r, "", 0, s
	}
	return c, r, lname, r.Mode, fuse.OK
}

// Mknod makes a device, FIFO, socket or regular file.
func (fs *fileSystem) Mknod(cancel <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) (code fuse.Status) {
	defer fs.track(filter.OpMknod, time.Now(), &code)
	parent, s := fs.inode(in.NodeId)
	if !s.Ok() {
		return s
	}
	c, r, lname, mode, s := fs.beginMake(filter.OpMknod, parent, name, in.Mode&unix.S_IFMT, in.Mode, 0, &in.Caller)
	if !s.Ok() {
		return fs.post(c, r, s)
	}
	var st unix.Stat_t
	ino, err := fs.tree.Mknod(parent, lname, mode, in.Rdev, fs.owner(&in.Caller), &st)
	return fs.made(c, r, r.Path, parent, name, ino, &st, err, out)
}

// Mkdir makes a directory.
func (fs *fileSystem) Mkdir(cancel <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) (code fuse.Status) {
	defer fs.track(filter.OpMkdir, time.Now(), &code)
	parent, s := fs.inode(in.NodeId)
	if !s.Ok() {
		return s
	}
	c, r, lname, mode, s := fs.beginMake(filter.OpMkdir, parent, name, unix.S_IFDIR, in.Mode, 0, &in.Caller)
	if !s.Ok() {
		return fs.post(c, r, s)
	}
	var st unix.Stat_t
	ino, err := fs.tree.Mkdir(parent, lname, mode, fs.owner(&in.Caller), &st)
	return fs.made(c, r, r.Path, parent, name, ino, &st, err, out)
}

// Symlink makes a symbolic link; the target is stored as the client gave it.
func (fs *fileSystem) Symlink(cancel <-chan struct{}, h *fuse.InHeader, target, name string, out *fuse.EntryOut) (code fuse.Status) {
	defer fs.track(filter.OpSymlink, time.Now(), &code)
	parent, s := fs.inode(h.NodeId)
	if !s.Ok() {
		return s
	}
	c, r, lname, s := fs.beginName(filter.OpSymlink, parent, name, &h.Caller)
	if s.Ok() && c != nil {
		r.Type, r.Target = unix.S_IFLNK, target
		if _, s = fs.pre(c, r, false); s.Ok() {
			target = r.Target
		}
	}
	if !s.Ok() {
		return fs.post(c, r, s)
	}
	var st unix.Stat_t
	ino, err := fs.tree.Symlink(parent, lname, target, fs.owner(&h.Caller), &st)
	if c == nil {
		r = &filter.Request{Op: filter.OpSymlink}
	}
	return fs.made(c, r, r.Path, parent, name, ino, &st, err, out)
}

// Link makes a hard link.
func (fs *fileSystem) Link(cancel <-chan struct{}, in *fuse.LinkIn, name string, out *fuse.EntryOut) (code fuse.Status) {
	defer fs.track(filter.OpLink, time.Now(), &code)
	parent, s := fs.inode(in.NodeId)
	if !s.Ok() {
		return s
	}
	target, s := fs.inode(in.Oldnodeid)
	if !s.Ok() {
		return s
	}
	c, r, lname, s := fs.beginName(filter.OpLink, parent, name, &in.Caller)
	if s.Ok() && c != nil {
		r.NewPath, r.Type = r.Path, target.Type
		if r.Path, s = fs.viewPath(target); s.Ok() {
			_, s = fs.pre(c, r, false)
		}
	}
	if !s.Ok() {
		return fs.post(c, r, s)
	}
	var st unix.Stat_t
	ino, err := fs.tree.Link(target, parent, lname, &st)
	if c == nil {
		return fs.made(c, &filter.Request{Op: filter.OpLink}, "", parent, name, ino, &st, err, out)
	}
	// The new name is the link's path from now on.
	r.Path, r.NewPath = r.NewPath, r.Path
	return fs.made(c, r, r.Path, parent, name, ino, &st, err, out)
}

// remove runs unlink or rmdir.
func (fs *fileSystem) remove(o filter.Op, h *fuse.InHeader, name string, rm func(*lower.Inode, string) error) fuse.Status {
	parent, s := fs.inode(h.NodeId)
	if !s.Ok() {
		return s
	}
	c, r, lname, s := fs.beginName(o, parent, name, &h.Caller)
	answered := false
	if s.Ok() && c != nil {
		if o == filter.OpRmdir {
			r.Type = unix.S_IFDIR
		}
		answered, s = fs.pre(c, r, true)
	}
	if !s.Ok() || answered {
		return fs.post(c, r, s)
	}
	return fs.post(c, r, fs.status(o.String(), rm(parent, lname)))
}

// Unlink removes a name.
func (fs *fileSystem) Unlink(cancel <-chan struct{}, h *fuse.InHeader, name string) (code fuse.Status) {
	defer fs.track(filter.OpUnlink, time.Now(), &code)
	return fs.remove(filter.OpUnlink, h, name, fs.tree.Unlink)
}

// Rmdir removes an empty directory.
func (fs *fileSystem) Rmdir(cancel <-chan struct{}, h *fuse.InHeader, name string) (code fuse.Status) {
	defer fs.track(filter.OpRmdir, time.Now(), &code)
	return fs.remove(filter.OpRmdir, h, name, fs.tree.Rmdir)
}

// Rename renames, honouring RENAME_NOREPLACE and RENAME_EXCHANGE.
func (fs *fileSystem) Rename(cancel <-chan struct{}, in *fuse.RenameIn, oldName, newName string) (code fuse.Status) {
	defer fs.track(filter.OpRename, time.Now(), &code)
	oldParent, s := fs.inode(in.NodeId)
	if !s.Ok() {
		return s
	}
	newParent, s := fs.inode(in.Newdir)
	if !s.Ok() {
		return s
	}
	c, r, lold, s := fs.beginName(filter.OpRename, oldParent, oldName, &in.Caller)
	if c == nil {
		if !s.Ok() {
			return s
		}
		return fs.status("rename", fs.tree.Rename(oldParent, oldName, newParent, newName, in.Flags))
	}
	_, rn, lnew, s2 := fs.beginName(filter.OpRename, newParent, newName, &in.Caller)
	if s.Ok() {
		s = s2
	}
	if !s.Ok() {
		return fs.post(c, r, s)
	}
	r.NewPath = rn.Path
	// The nodes that move, to name them anew once moved.
	var m lower.Moved
	src, dst := &m.Src, &m.Dst
	if err := fs.tree.StatAt(oldParent, lold, src); err != nil {
		return fs.post(c, r, fs.status("rename", err))
	}
	m.HaveSrc = true
	exchange := in.Flags&unix.RENAME_EXCHANGE != 0
	if exchange {
		if err := fs.tree.StatAt(newParent, lnew, dst); err != nil {
			return fs.post(c, r, fs.status("rename", err))
		}
		m.HaveDst = true
		// An exchange also moves the destination to the source's place.
		back := *r
		back.Path, back.NewPath, back.Type = r.NewPath, r.Path, dst.Mode&unix.S_IFMT
		if _, s := fs.pre(c, &back, false); !s.Ok() {
			return fs.post(c, r, s)
		}
	}
	r.Type = src.Mode & unix.S_IFMT
	if _, s := fs.pre(c, r, false); !s.Ok() {
		return fs.post(c, r, s)
	}
	if err := fs.tree.RenameMoved(oldParent, lold, newParent, lnew, in.Flags, &m); err != nil {
		return fs.post(c, r, fs.status("rename", err))
	}
	if ino := fs.tree.ByKey(src); ino != nil {
		fs.tree.SetName(ino, newParent, newName)
	}
	if exchange {
		if ino := fs.tree.ByKey(dst); ino != nil {
			fs.tree.SetName(ino, oldParent, oldName)
		}
	}
	return fs.post(c, r, fuse.OK)
}

// Readlink returns a symlink's target.
func (fs *fileSystem) Readlink(cancel <-chan struct{}, h *fuse.InHeader) (_ []byte, code fuse.Status) {
	defer fs.track(filter.OpReadlink, time.Now(), &code)
	ino, s := fs.inode(h.NodeId)
	if !s.Ok() {
		return nil, s
	}
	c, r, s := fs.begin(filter.OpReadlink, ino, &h.Caller)
	if !s.Ok() {
		return nil, s
	}
	if c == nil {
		target, err := fs.tree.Readlink(ino)
		return target, fs.status("readlink", err)
	}
	answered, s := fs.pre(c, r, true)
	if s.Ok() && !answered {
		target, err := fs.tree.Readlink(ino)
		r.Target, s = string(target), fs.status("readlink", err)
	}
	if s = fs.post(c, r, s); !s.Ok() {
		return nil, s
	}
	return []byte(r.Target), fuse.OK
}

// simple runs an operation on a node that has no output but its result,
// through the filters; setup fills the request's inputs.
func (fs *fileSystem) simple(o filter.Op, id uint64, caller *fuse.Caller, setup func(*filter.Request), run func(*lower.Inode) error) fuse.Status {
	ino, s := fs.inode(id)
	if !s.Ok() {
		return s
	}
	c, r, s := fs.begin(o, ino, caller)
	if !s.Ok() {
		return s
	}
	if c == nil {
		return fs.status(o.String(), run(ino))
	}
	if setup != nil {
		setup(r)
	}
	answered, s := fs.pre(c, r, true)
	if s.Ok() && !answered {
		s = fs.status(o.String(), run(ino))
	}
	return fs.post(c, r, s)
}

// Access is only sent without default_permissions, when the daemon runs as
// the only user of the mount; it checks with the daemon's credentials.
func (fs *fileSystem) Access(cancel <-chan struct{}, in *fuse.AccessIn) (code fuse.Status) {
	defer fs.track(filter.OpAccess, time.Now(), &code)
	return fs.simple(filter.OpAccess, in.NodeId, &in.Caller, nil, func(ino *lower.Inode) error {
		return fs.tree.Access(ino, in.Mask)
	})
}

// StatFs reports the lower filesystem's statistics.
func (fs *fileSystem) StatFs(cancel <-chan struct{}, h *fuse.InHeader, out *fuse.StatfsOut) (code fuse.Status) {
	defer fs.track(filter.OpStatfs, time.Now(), &code)
	ino, c, r, s := fs.beginNode(filter.OpStatfs, h.NodeId, &h.Caller)
	if !s.Ok() {
		return s
	}
	var st unix.Statfs_t
	if err := fs.tree.Statfs(ino, &st); err != nil {
		return fs.post(c, r, fs.status("statfs", err))
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
	return fs.post(c, r, fuse.OK)
}

// beginNode starts a filtered operation on a node ID and runs the
// pre-filters; an operation it cannot go on with comes back as not OK.
func (fs *fileSystem) beginNode(o filter.Op, id uint64, caller *fuse.Caller) (*lower.Inode, *filter.Chain, *filter.Request, fuse.Status) {
	ino, s := fs.inode(id)
	if !s.Ok() {
		return nil, nil, nil, s
	}
	c, r, s := fs.begin(o, ino, caller)
	if !s.Ok() || c == nil {
		return ino, nil, nil, s
	}
	if _, s := fs.pre(c, r, false); !s.Ok() {
		return nil, nil, nil, fs.post(c, r, s)
	}
	return ino, c, r, fuse.OK
}

// GetXAttr reads an extended attribute; with an empty dest it returns the
// size only.
func (fs *fileSystem) GetXAttr(cancel <-chan struct{}, h *fuse.InHeader, attr string, dest []byte) (_ uint32, code fuse.Status) {
	defer fs.track(filter.OpGetxattr, time.Now(), &code)
	ino, s := fs.inode(h.NodeId)
	if !s.Ok() {
		return 0, s
	}
	c, r, s := fs.begin(filter.OpGetxattr, ino, &h.Caller)
	if !s.Ok() {
		return 0, s
	}
	if c == nil {
		return fs.getXattr(ino, attr, dest)
	}
	r.Xattr = attr
	answered, s := fs.pre(c, r, true)
	if !s.Ok() {
		return 0, fs.post(c, r, s)
	}
	if !answered && !c.HasPost() {
		return fs.getXattr(ino, r.Xattr, dest)
	}
	if !answered {
		// The whole value, so that post-filters see it whatever the size
		// of dest.
		buf := make([]byte, max(len(dest), 4096))
		n, s := fs.getXattr(ino, r.Xattr, buf)
		for s == fuse.ERANGE {
			buf = make([]byte, n)
			n, s = fs.getXattr(ino, r.Xattr, buf)
		}
		if !s.Ok() {
			return 0, fs.post(c, r, s)
		}
		r.Value = buf[:n]
	}
	if s := fs.post(c, r, fuse.OK); !s.Ok() {
		return 0, s
	}
	if len(dest) == 0 {
		return uint32(len(r.Value)), fuse.OK
	}
	if len(r.Value) > len(dest) {
		return uint32(len(r.Value)), fuse.ERANGE
	}
	return uint32(copy(dest, r.Value)), fuse.OK
}

// getXattr reads an extended attribute of the lower inode; ERANGE comes with
// the size needed.
func (fs *fileSystem) getXattr(ino *lower.Inode, attr string, dest []byte) (uint32, fuse.Status) {
	n, err := fs.tree.GetXattr(ino, attr, dest)
	if err == unix.ERANGE {
		n, err = fs.tree.GetXattr(ino, attr, nil)
		if err == nil {
			return uint32(n), fuse.ERANGE
		}
	}
	return uint32(n), fs.status("getxattr", err)
}

// ListXAttr lists extended attribute names.
func (fs *fileSystem) ListXAttr(cancel <-chan struct{}, h *fuse.InHeader, dest []byte) (_ uint32, code fuse.Status) {
	defer fs.track(filter.OpListxattr, time.Now(), &code)
	ino, c, r, s := fs.beginNode(filter.OpListxattr, h.NodeId, &h.Caller)
	if !s.Ok() {
		return 0, s
	}
	n, err := fs.tree.ListXattr(ino, dest)
	if err == unix.ERANGE {
		n, err = fs.tree.ListXattr(ino, nil)
		if err == nil {
			return uint32(n), fs.post(c, r, fuse.ERANGE)
		}
	}
	return uint32(n), fs.post(c, r, fs.status("listxattr", err))
}

// SetXAttr sets an extended attribute.
func (fs *fileSystem) SetXAttr(cancel <-chan struct{}, in *fuse.SetXAttrIn, attr string, data []byte) (code fuse.Status) {
	defer fs.track(filter.OpSetxattr, time.Now(), &code)
	return fs.simple(filter.OpSetxattr, in.NodeId, &in.Caller, func(r *filter.Request) { r.Xattr = attr }, func(ino *lower.Inode) error {
		return fs.tree.SetXattr(ino, attr, data, int(in.Flags))
	})
}

// RemoveXAttr removes an extended attribute.
func (fs *fileSystem) RemoveXAttr(cancel <-chan struct{}, h *fuse.InHeader, attr string) (code fuse.Status) {
	defer fs.track(filter.OpRemovexattr, time.Now(), &code)
	return fs.simple(filter.OpRemovexattr, h.NodeId, &h.Caller, func(r *filter.Request) { r.Xattr = attr }, func(ino *lower.Inode) error {
		return fs.tree.RemoveXattr(ino, attr)
	})
}

// Statx returns extended attributes (birth time among them).
func (fs *fileSystem) Statx(cancel <-chan struct{}, in *fuse.StatxIn, out *fuse.StatxOut) (code fuse.Status) {
	defer fs.track(filter.OpStatx, time.Now(), &code)
	ino, c, r, s := fs.beginNode(filter.OpStatx, in.NodeId, &in.Caller)
	if !s.Ok() {
		return s
	}
	var stx unix.Statx_t
	if err := fs.tree.Statx(ino, in.SxMask|unix.STATX_BASIC_STATS, &stx); err != nil {
		return fs.post(c, r, fs.status("statx", err))
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
	out.SetTimeout(fs.ttl(ino))
	if c == nil {
		return fuse.OK
	}
	if c.HasAttr() {
		a := fuse.Attr{Ino: stx.Ino, Mode: uint32(stx.Mode), Nlink: stx.Nlink, Owner: fuse.Owner{Uid: stx.Uid, Gid: stx.Gid}, Size: stx.Size}
		present(c, r, r.Path, &a)
		out.Statx.Ino, out.Statx.Mode, out.Statx.Nlink, out.Statx.Uid, out.Statx.Gid, out.Statx.Size = a.Ino, uint16(a.Mode), a.Nlink, a.Uid, a.Gid, a.Size
	}
	out.SetTimeout(fs.timeoutFor(c, r.Path, ino))
	return fs.post(c, r, fuse.OK)
}
