package sievefs

import (
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
	"time"

	"github.com/sievefs/sievefs/internal/lower"
)

// Lookup finds a name in a directory. A missing name is answered as a
// negative entry that the kernel may cache for the entry timeout.
func (fs *fileSystem) Lookup(cancel <-chan struct{}, h *fuse.InHeader, name string, out *fuse.EntryOut) (code fuse.Status) {
	defer fs.track(opLookup, time.Now(), &code)
	parent, s := fs.inode(h.NodeId)
	if !s.Ok() {
		return s
	}
	var st unix.Stat_t
	ino, err := fs.tree.Lookup(parent, name, &st)
	if err == unix.ENOENT && fs.timeout > 0 {
		*out = fuse.EntryOut{}
		out.SetEntryTimeout(fs.timeout)
		return fuse.OK
	}
	if err != nil {
		return fs.status("lookup", err)
	}
	fs.fillEntry(ino, &st, out)
	return fuse.OK
}

// Forget drops lookups the kernel no longer holds.
func (fs *fileSystem) Forget(nodeID, nlookup uint64) {
	defer fs.trackNoStatus(opForget, time.Now())
	fs.tree.Forget(nodeID, nlookup)
}

// GetAttr returns the attributes of a node.
func (fs *fileSystem) GetAttr(cancel <-chan struct{}, in *fuse.GetAttrIn, out *fuse.AttrOut) (code fuse.Status) {
	defer fs.track(opGetattr, time.Now(), &code)
	ino, s := fs.inode(in.NodeId)
	if !s.Ok() {
		return s
	}
	var st unix.Stat_t
	if err := fs.tree.Stat(ino, &st); err != nil {
		return fs.status("getattr", err)
	}
	fillAttr(&st, &out.Attr)
	out.SetTimeout(fs.timeout)
	return fuse.OK
}

// SetAttr changes mode, owner, size and times, in that order, and returns the
// attributes after the change.
func (fs *fileSystem) SetAttr(cancel <-chan struct{}, in *fuse.SetAttrIn, out *fuse.AttrOut) (code fuse.Status) {
	defer fs.track(opSetattr, time.Now(), &code)
	ino, s := fs.inode(in.NodeId)
	if !s.Ok() {
		return s
	}
	if mode, ok := in.GetMode(); ok {
		if err := fs.tree.Chmod(ino, mode); err != nil {
			return fs.status("setattr", err)
		}
	}
	uid, uok := in.GetUID()
	gid, gok := in.GetGID()
	if uok || gok {
		u, g := -1, -1
		if uok {
			u = int(uid)
		}
		if gok {
			g = int(gid)
		}
		if err := fs.tree.Chown(ino, u, g); err != nil {
			return fs.status("setattr", err)
		}
	}
	if in.Valid&setattrChanges == 0 || in.Valid&fuse.FATTR_CTIME != 0 {
		// chown(path, -1, -1) reaches the daemon with nothing to change;
		// it still updates ctime, as it does on the lower filesystem.
		if err := fs.tree.Chown(ino, -1, -1); err != nil {
			return fs.status("setattr", err)
		}
	}
	if size, ok := in.GetSize(); ok {
		if err := fs.truncate(ino, in, int64(size)); err != nil {
			return fs.status("setattr", err)
		}
		if in.Valid&fuse.FATTR_KILL_SUIDGID != 0 && in.Valid&fuse.FATTR_MODE == 0 {
			fs.killPriv(ino)
		}
	}
	if in.Valid&(fuse.FATTR_ATIME|fuse.FATTR_MTIME) != 0 {
		times := [2]unix.Timespec{{Nsec: unix.UTIME_OMIT}, {Nsec: unix.UTIME_OMIT}}
		if in.Valid&fuse.FATTR_ATIME != 0 {
			times[0] = setTime(in.Valid&fuse.FATTR_ATIME_NOW != 0, in.Atime, in.Atimensec)
		}
		if in.Valid&fuse.FATTR_MTIME != 0 {
			times[1] = setTime(in.Valid&fuse.FATTR_MTIME_NOW != 0, in.Mtime, in.Mtimensec)
		}
		if err := fs.tree.Utimens(ino, &times); err != nil {
			return fs.status("setattr", err)
		}
	}
	var st unix.Stat_t
	if err := fs.tree.Stat(ino, &st); err != nil {
		return fs.status("setattr", err)
	}
	fillAttr(&st, &out.Attr)
	out.SetTimeout(fs.timeout)
	return fuse.OK
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

// newEntry answers an operation that made a new inode.
func (fs *fileSystem) newEntry(op string, ino *lower.Inode, st *unix.Stat_t, err error, out *fuse.EntryOut) fuse.Status {
	if err != nil {
		return fs.status(op, err)
	}
	fs.fillEntry(ino, st, out)
	return fuse.OK
}

// Mknod makes a device, FIFO, socket or regular file.
func (fs *fileSystem) Mknod(cancel <-chan struct{}, in *fuse.MknodIn, name string, out *fuse.EntryOut) (code fuse.Status) {
	defer fs.track(opMknod, time.Now(), &code)
	parent, s := fs.inode(in.NodeId)
	if !s.Ok() {
		return s
	}
	var st unix.Stat_t
	ino, err := fs.tree.Mknod(parent, name, in.Mode, in.Rdev, fs.owner(&in.Caller), &st)
	return fs.newEntry("mknod", ino, &st, err, out)
}

// Mkdir makes a directory.
func (fs *fileSystem) Mkdir(cancel <-chan struct{}, in *fuse.MkdirIn, name string, out *fuse.EntryOut) (code fuse.Status) {
	defer fs.track(opMkdir, time.Now(), &code)
	parent, s := fs.inode(in.NodeId)
	if !s.Ok() {
		return s
	}
	var st unix.Stat_t
	ino, err := fs.tree.Mkdir(parent, name, in.Mode, fs.owner(&in.Caller), &st)
	return fs.newEntry("mkdir", ino, &st, err, out)
}

// Symlink makes a symbolic link; the target is stored as the client gave it.
func (fs *fileSystem) Symlink(cancel <-chan struct{}, h *fuse.InHeader, target, name string, out *fuse.EntryOut) (code fuse.Status) {
	defer fs.track(opSymlink, time.Now(), &code)
	parent, s := fs.inode(h.NodeId)
	if !s.Ok() {
		return s
	}
	var st unix.Stat_t
	ino, err := fs.tree.Symlink(parent, name, target, fs.owner(&h.Caller), &st)
	return fs.newEntry("symlink", ino, &st, err, out)
}

// Link makes a hard link.
func (fs *fileSystem) Link(cancel <-chan struct{}, in *fuse.LinkIn, name string, out *fuse.EntryOut) (code fuse.Status) {
	defer fs.track(opLink, time.Now(), &code)
	parent, s := fs.inode(in.NodeId)
	if !s.Ok() {
		return s
	}
	target, s := fs.inode(in.Oldnodeid)
	if !s.Ok() {
		return s
	}
	var st unix.Stat_t
	ino, err := fs.tree.Link(target, parent, name, &st)
	return fs.newEntry("link", ino, &st, err, out)
}

// Unlink removes a name.
func (fs *fileSystem) Unlink(cancel <-chan struct{}, h *fuse.InHeader, name string) (code fuse.Status) {
	defer fs.track(opUnlink, time.Now(), &code)
	parent, s := fs.inode(h.NodeId)
	if !s.Ok() {
		return s
	}
	return fs.status("unlink", fs.tree.Unlink(parent, name))
}

// Rmdir removes an empty directory.
func (fs *fileSystem) Rmdir(cancel <-chan struct{}, h *fuse.InHeader, name string) (code fuse.Status) {
	defer fs.track(opRmdir, time.Now(), &code)
	parent, s := fs.inode(h.NodeId)
	if !s.Ok() {
		return s
	}
	return fs.status("rmdir", fs.tree.Rmdir(parent, name))
}

// Rename renames, honouring RENAME_NOREPLACE and RENAME_EXCHANGE.
func (fs *fileSystem) Rename(cancel <-chan struct{}, in *fuse.RenameIn, oldName, newName string) (code fuse.Status) {
	defer fs.track(opRename, time.Now(), &code)
	oldParent, s := fs.inode(in.NodeId)
	if !s.Ok() {
		return s
	}
	newParent, s := fs.inode(in.Newdir)
	if !s.Ok() {
		return s
	}
	return fs.status("rename", fs.tree.Rename(oldParent, oldName, newParent, newName, in.Flags))
}

// Readlink returns a symlink's target.
func (fs *fileSystem) Readlink(cancel <-chan struct{}, h *fuse.InHeader) (_ []byte, code fuse.Status) {
	defer fs.track(opReadlink, time.Now(), &code)
	ino, s := fs.inode(h.NodeId)
	if !s.Ok() {
		return nil, s
	}
	target, err := fs.tree.Readlink(ino)
	return target, fs.status("readlink", err)
}

// Access is only sent without default_permissions, when the daemon runs as
// the only user of the mount; it checks with the daemon's credentials.
func (fs *fileSystem) Access(cancel <-chan struct{}, in *fuse.AccessIn) (code fuse.Status) {
	defer fs.track(opAccess, time.Now(), &code)
	ino, s := fs.inode(in.NodeId)
	if !s.Ok() {
		return s
	}
	return fs.status("access", fs.tree.Access(ino, in.Mask))
}

// StatFs reports the lower filesystem's statistics.
func (fs *fileSystem) StatFs(cancel <-chan struct{}, h *fuse.InHeader, out *fuse.StatfsOut) (code fuse.Status) {
	defer fs.track(opStatfs, time.Now(), &code)
	ino, s := fs.inode(h.NodeId)
	if !s.Ok() {
		return s
	}
	var st unix.Statfs_t
	if err := fs.tree.Statfs(ino, &st); err != nil {
		return fs.status("statfs", err)
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
	return fuse.OK
}

// GetXAttr reads an extended attribute; with an empty dest it returns the
// size only.
func (fs *fileSystem) GetXAttr(cancel <-chan struct{}, h *fuse.InHeader, attr string, dest []byte) (_ uint32, code fuse.Status) {
	defer fs.track(opGetxattr, time.Now(), &code)
	ino, s := fs.inode(h.NodeId)
	if !s.Ok() {
		return 0, s
	}
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
	defer fs.track(opListxattr, time.Now(), &code)
	ino, s := fs.inode(h.NodeId)
	if !s.Ok() {
		return 0, s
	}
	n, err := fs.tree.ListXattr(ino, dest)
	if err == unix.ERANGE {
		n, err = fs.tree.ListXattr(ino, nil)
		if err == nil {
			return uint32(n), fuse.ERANGE
		}
	}
	return uint32(n), fs.status("listxattr", err)
}

// SetXAttr sets an extended attribute.
func (fs *fileSystem) SetXAttr(cancel <-chan struct{}, in *fuse.SetXAttrIn, attr string, data []byte) (code fuse.Status) {
	defer fs.track(opSetxattr, time.Now(), &code)
	ino, s := fs.inode(in.NodeId)
	if !s.Ok() {
		return s
	}
	return fs.status("setxattr", fs.tree.SetXattr(ino, attr, data, int(in.Flags)))
}

// RemoveXAttr removes an extended attribute.
func (fs *fileSystem) RemoveXAttr(cancel <-chan struct{}, h *fuse.InHeader, attr string) (code fuse.Status) {
	defer fs.track(opRemovexattr, time.Now(), &code)
	ino, s := fs.inode(h.NodeId)
	if !s.Ok() {
		return s
	}
	return fs.status("removexattr", fs.tree.RemoveXattr(ino, attr))
}

// Statx returns extended attributes (birth time among them).
func (fs *fileSystem) Statx(cancel <-chan struct{}, in *fuse.StatxIn, out *fuse.StatxOut) (code fuse.Status) {
	defer fs.track(opStatx, time.Now(), &code)
	ino, s := fs.inode(in.NodeId)
	if !s.Ok() {
		return s
	}
	var stx unix.Statx_t
	if err := fs.tree.Statx(ino, in.SxMask|unix.STATX_BASIC_STATS, &stx); err != nil {
		return fs.status("statx", err)
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
	out.SetTimeout(fs.timeout)
	return fuse.OK
}
