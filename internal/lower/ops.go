package lower

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Owner is the owner a new inode is given; see Tree.Mkdir and friends.
type Owner struct {
	Uid, Gid uint32
}

// Acquire returns an O_PATH (or better) descriptor of ino that stays valid
// until the matching Release. A directory must still be beneath the lower
// root: one moved out of the tree, or deleted, since the kernel looked it up
// fails with ENOENT, whatever the operation (a lookup in it, a listing, a
// chmod or an xattr change through a descriptor or working directory a
// client still holds). The node ID the kernel holds follows the directory
// wherever it goes; this check keeps every operation inside the tree. Files
// are not checked: a file moved out stays reachable through an inode the
// kernel knows, as on a bind mount.
func (t *Tree) Acquire(ino *Inode) (int, error) {
	fd, err := t.acquire(ino)
	if err != nil || ino.Type != unix.S_IFDIR {
		return fd, err
	}
	if !t.beneathFD(ino, fd) {
		t.Release(ino)
		return -1, unix.ENOENT
	}
	return fd, nil
}

// acquire is Acquire without the check of directories, for the tree's own
// bookkeeping (the watch, display).
func (t *Tree) acquire(ino *Inode) (int, error) { return t.fds.acquire(t, ino) }

// Release ends one Acquire.
func (t *Tree) Release(ino *Inode) { t.fds.release(ino) }

// beneath reports whether the directory fd is the lower root or lies under
// it, by the path the kernel gives it now. It runs for every lookup, so it
// reads the descriptor's link relative to an open /proc/self/fd into a
// buffer on the stack.
func (t *Tree) beneath(fd int) bool {
	var buf [512]byte
	p, err := t.fdLink(fd, buf[:])
	if err != nil {
		return false
	}
	root := *t.rootPath.Load()
	if within(p, root) {
		return true
	}
	// The lower root itself may have been moved.
	now, err := readlinkString(procPath(t.rootFD))
	if err != nil || now == root {
		return false
	}
	t.rootPath.Store(&now)
	return within(p, now)
}

// fdLink returns the path the kernel gives the descriptor fd now, read into
// buf when it fits.
func (t *Tree) fdLink(fd int, buf []byte) ([]byte, error) {
	dirfd, name := t.magicLink(fd)
	for {
		n, err := unix.Readlinkat(dirfd, name, buf)
		if err != nil {
			return nil, err
		}
		if n < len(buf) {
			return buf[:n], nil
		}
		buf = make([]byte, 2*len(buf))
	}
}

// within reports whether path is dir or lies under it.
func within(path []byte, dir string) bool {
	if dir == "/" {
		return len(path) > 0 && path[0] == '/'
	}
	return len(path) >= len(dir) && string(path[:len(dir)]) == dir &&
		(len(path) == len(dir) || path[len(dir)] == '/')
}

// checkName refuses anything but a single path component.
func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return unix.ENOENT
	case strings.IndexByte(name, '/') >= 0 || strings.IndexByte(name, 0) >= 0:
		return unix.EINVAL
	}
	return nil
}

// Lookup finds name in parent without following a symlink, counts one lookup
// of the inode and fills st.
func (t *Tree) Lookup(parent *Inode, name string, st *unix.Stat_t) (*Inode, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	pfd, err := t.Acquire(parent)
	if err != nil {
		return nil, err
	}
	defer t.Release(parent)
	return t.lookupAt(parent, pfd, name, st)
}

// LookupAt is Lookup in the directory parent open as dir, which the caller
// has checked (Beneath) and keeps open: readdirplus looks up every entry of a
// directory it is listing.
func (t *Tree) LookupAt(parent *Inode, dir *File, name string, st *unix.Stat_t) (*Inode, error) {
	return t.lookupAt(parent, dir.fd, name, st)
}

// lookupAt is LookupAt on a raw descriptor of the directory.
func (t *Tree) lookupAt(parent *Inode, dirfd int, name string, st *unix.Stat_t) (*Inode, error) {
	if err := statIn(dirfd, name, st); err != nil {
		return nil, err
	}
	return t.adoptAt(parent, dirfd, name, st)
}

// StatIn fills st with the attributes of name in the directory open as
// dir, without following a symlink and without adding it to the table.
func (t *Tree) StatIn(dir *File, name string, st *unix.Stat_t) error {
	return statIn(dir.fd, name, st)
}

func statIn(dirfd int, name string, st *unix.Stat_t) error {
	if err := checkName(name); err != nil {
		return err
	}
	return unix.Fstatat(dirfd, name, st, unix.AT_SYMLINK_NOFOLLOW)
}

// AdoptAt counts one lookup of name in parent (open as dir), whose
// attributes StatIn just read into st, adding it to the table if need be:
// the second half of LookupAt.
func (t *Tree) AdoptAt(parent *Inode, dir *File, name string, st *unix.Stat_t) (*Inode, error) {
	return t.adoptAt(parent, dir.fd, name, st)
}

func (t *Tree) adoptAt(parent *Inode, dirfd int, name string, st *unix.Stat_t) (*Inode, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if ino, ok := t.adopt(parent, dirfd, name, st); ok {
		return ino, nil
	}
	return t.openChild(parent, dirfd, name, st)
}

// resolve opens an inode not opened yet by its name, and checks that the
// name still holds it: ENOENT when the name is gone, ESTALE when it now
// holds another file. It returns the descriptor and, when the tree uses
// them, a file handle of the inode.
func (t *Tree) resolve(ino *Inode, at *location) (int, unix.FileHandle, bool, error) {
	pfd, err := t.Acquire(at.parent)
	if err != nil {
		return -1, unix.FileHandle{}, false, err
	}
	defer t.Release(at.parent)
	fd, err := unix.Openat(pfd, at.name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, unix.FileHandle{}, false, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, unix.FileHandle{}, false, err
	}
	if (Key{st.Dev, st.Ino}) != ino.Key || st.Mode&unix.S_IFMT != ino.Type {
		unix.Close(fd)
		return -1, unix.FileHandle{}, false, unix.ESTALE
	}
	h, ok := t.handleOf(fd, &st)
	return fd, h, ok, nil
}

// Beneath reports whether the open directory dir of ino is still beneath
// the lower root (see Acquire). A directory found there is trusted for
// Options.RecheckAfter before it is checked again.
func (t *Tree) Beneath(ino *Inode, dir *File) bool { return t.beneathFD(ino, dir.fd) }

// beneathFD is Beneath on a raw descriptor of the directory.
func (t *Tree) beneathFD(ino *Inode, dirfd int) bool {
	if ino == t.root {
		return true
	}
	now := int64(time.Since(t.epoch))
	if t.recheck > 0 && now < ino.beneathUntil.Load() {
		return true
	}
	if !t.beneath(dirfd) {
		return false
	}
	if t.recheck > 0 {
		ino.beneathUntil.Store(now + int64(t.recheck))
	}
	return true
}

// openChild opens name in the directory parent, open as pfd, as O_PATH,
// fills st from the descriptor and registers the inode.
func (t *Tree) openChild(parent *Inode, pfd int, name string, st *unix.Stat_t) (*Inode, error) {
	fd, err := unix.Openat(pfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Fstat(fd, st); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return t.register(fd, st, location{parent: parent, name: name}), nil
}

// Stat fills st with the attributes of ino.
func (t *Tree) Stat(ino *Inode, st *unix.Stat_t) error {
	fd, err := t.Acquire(ino)
	if err != nil {
		return err
	}
	defer t.Release(ino)
	return unix.Fstatat(fd, "", st, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW)
}

// Statfs fills st with the statistics of the filesystem holding ino.
func (t *Tree) Statfs(ino *Inode, st *unix.Statfs_t) error {
	fd, err := t.Acquire(ino)
	if err != nil {
		return err
	}
	defer t.Release(ino)
	return unix.Fstatfs(fd, st)
}

// create runs mk, which makes name in the directory pfd, then registers the
// new inode, gives it owner (when not nil) and fills st.
func (t *Tree) create(parent *Inode, name string, owner *Owner, st *unix.Stat_t, mk func(pfd int) error) (*Inode, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	pfd, err := t.Acquire(parent)
	if err != nil {
		return nil, err
	}
	defer t.Release(parent)
	if err := mk(pfd); err != nil {
		return nil, err
	}
	fd, err := unix.Openat(pfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if owner != nil {
		if err := chownNew(fd, pfd, owner); err != nil {
			unix.Close(fd)
			// Undo what mk made, so that no inode of the daemon's is left.
			undo := 0
			if ok, _ := isDirAt(pfd, name); ok {
				undo = unix.AT_REMOVEDIR
			}
			if uerr := unix.Unlinkat(pfd, name, undo); uerr != nil {
				return nil, fmt.Errorf("%w (and removing it again: %w)", err, uerr)
			}
			return nil, err
		}
	}
	if err := unix.Fstat(fd, st); err != nil {
		unix.Close(fd)
		return nil, err
	}
	return t.register(fd, st, location{parent: parent, name: name}), nil
}

// isDirAt reports whether name in the directory pfd is a directory.
func isDirAt(pfd int, name string) (bool, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return false, err
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR, nil
}

// chownNew gives a just created inode (fd) the caller's owner, keeping the
// group that a set-group-ID parent directory (pfd) imposes.
func chownNew(fd, pfd int, owner *Owner) error {
	var pst unix.Stat_t
	if err := unix.Fstat(pfd, &pst); err != nil {
		return err
	}
	gid := int(owner.Gid)
	if pst.Mode&unix.S_ISGID != 0 {
		gid = -1
	}
	if err := unix.Fchownat(fd, "", int(owner.Uid), gid, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown new inode: %w", err)
	}
	return nil
}

// Mkdir makes a directory.
func (t *Tree) Mkdir(parent *Inode, name string, mode uint32, owner *Owner, st *unix.Stat_t) (*Inode, error) {
	return t.create(parent, name, owner, st, func(pfd int) error { return unix.Mkdirat(pfd, name, mode) })
}

// Mknod makes a device, FIFO, socket or regular file.
func (t *Tree) Mknod(parent *Inode, name string, mode, rdev uint32, owner *Owner, st *unix.Stat_t) (*Inode, error) {
	return t.create(parent, name, owner, st, func(pfd int) error { return unix.Mknodat(pfd, name, mode, int(rdev)) })
}

// Symlink makes a symbolic link to target; the target is stored as given.
func (t *Tree) Symlink(parent *Inode, name, target string, owner *Owner, st *unix.Stat_t) (*Inode, error) {
	return t.create(parent, name, owner, st, func(pfd int) error { return unix.Symlinkat(target, pfd, name) })
}

// Link makes a hard link to ino in parent.
func (t *Tree) Link(ino, parent *Inode, name string, st *unix.Stat_t) (*Inode, error) {
	fd, err := t.Acquire(ino)
	if err != nil {
		return nil, err
	}
	defer t.Release(ino)
	return t.create(parent, name, nil, st, func(pfd int) error {
		return unix.Linkat(fd, "", pfd, name, unix.AT_EMPTY_PATH)
	})
}

// Create opens name in parent with O_CREAT and the given flags, returning the
// new (or existing, without O_EXCL) inode and the file open.
func (t *Tree) Create(parent *Inode, name string, flags int, mode uint32, owner *Owner, st *unix.Stat_t) (*Inode, *File, error) {
	if err := checkName(name); err != nil {
		return nil, nil, err
	}
	pfd, err := t.Acquire(parent)
	if err != nil {
		return nil, nil, err
	}
	defer t.Release(parent)
	exclusive := flags&unix.O_EXCL != 0
	flags = openFlags(flags) &^ (unix.O_CREAT | unix.O_EXCL)
	// Try to create first, so that only a file this call made is given the
	// caller's owner.
	fd, err := unix.Openat(pfd, name, flags|unix.O_CREAT|unix.O_EXCL, mode)
	created := err == nil
	if err == unix.EEXIST && !exclusive {
		fd, err = unix.Openat(pfd, name, flags, 0)
	}
	if err != nil {
		return nil, nil, err
	}
	if !created {
		owner = nil
	}
	ino, err := t.registerOpen(fd, pfd, owner, st, location{parent: parent, name: name}, func() { unix.Unlinkat(pfd, name, 0) })
	if err != nil {
		unix.Close(fd)
		return nil, nil, err
	}
	return ino, &File{fd}, nil
}

// Tmpfile opens an unnamed regular file in parent (O_TMPFILE).
func (t *Tree) Tmpfile(parent *Inode, flags int, mode uint32, owner *Owner, st *unix.Stat_t) (*Inode, *File, error) {
	pfd, err := t.Acquire(parent)
	if err != nil {
		return nil, nil, err
	}
	defer t.Release(parent)
	flags = openFlags(flags) &^ unix.O_CREAT
	fd, err := unix.Openat(pfd, ".", flags|unix.O_TMPFILE, mode)
	if err != nil {
		return nil, nil, err
	}
	ino, err := t.registerOpen(fd, pfd, owner, st, location{}, func() {})
	if err != nil {
		unix.Close(fd)
		return nil, nil, err
	}
	return ino, &File{fd}, nil
}

// registerOpen registers the inode behind the open descriptor fd, found
// at at (nil for an unnamed file).
func (t *Tree) registerOpen(fd, pfd int, owner *Owner, st *unix.Stat_t, at location, undo func()) (*Inode, error) {
	if owner != nil {
		if err := chownNew(fd, pfd, owner); err != nil {
			undo()
			return nil, err
		}
	}
	if err := unix.Fstat(fd, st); err != nil {
		return nil, err
	}
	pathFD, err := unix.Dup(fd)
	if err != nil {
		return nil, err
	}
	unix.CloseOnExec(pathFD)
	return t.register(pathFD, st, at), nil
}

// openFlags keeps the open flags that make sense on a descriptor the daemon
// holds: O_DIRECT is the client's business (the kernel sends its I/O as is).
func openFlags(flags int) int {
	flags &^= unix.O_NOCTTY | unix.O_DIRECT
	return flags | unix.O_NOFOLLOW | unix.O_CLOEXEC
}

// Open opens ino for I/O with the given open(2) flags.
func (t *Tree) Open(ino *Inode, flags int) (int, error) {
	flags = openFlags(flags) &^ (unix.O_CREAT | unix.O_EXCL | unix.O_TRUNC)
	fd, r := t.fds.held(ino)
	if fd < 0 && r.byHandle {
		// Evicted: one open by handle, not an O_PATH reopen and then this.
		nfd, err := unix.OpenByHandleAt(t.mountFD, r.handle, flags)
		if err == nil && ino.Type == unix.S_IFDIR && !t.beneathFD(ino, nfd) {
			unix.Close(nfd)
			return -1, unix.ENOENT
		}
		if err != unix.ESTALE || r.at == nil {
			return nfd, err
		}
		// A stale handle: Acquire counts it and reopens by name.
	}
	if fd < 0 {
		var err error
		if fd, err = t.Acquire(ino); err != nil {
			return -1, err
		}
	} else if ino.Type == unix.S_IFDIR && !t.beneathFD(ino, fd) {
		t.Release(ino)
		return -1, unix.ENOENT
	}
	defer t.Release(ino)
	return t.reopen(fd, flags)
}

// reopen opens the file behind the O_PATH descriptor fd with new flags. The
// magic link in /proc refers to the inode itself, not to a path.
func (t *Tree) reopen(fd, flags int) (int, error) {
	dirfd, name := t.magicLink(fd)
	return unix.Openat(dirfd, name, flags&^unix.O_NOFOLLOW, 0)
}

// magicLink names the /proc link of the descriptor fd for the *at calls:
// relative to the open /proc/self/fd, which spares resolving that path on
// every call.
func (t *Tree) magicLink(fd int) (dirfd int, name string) {
	if t.procFD < 0 {
		return unix.AT_FDCWD, procPath(fd)
	}
	return t.procFD, strconv.Itoa(fd)
}

// OpenDir opens the directory ino for reading entries.
func (t *Tree) OpenDir(ino *Inode) (*File, error) {
	return t.OpenFile(ino, unix.O_RDONLY|unix.O_DIRECTORY)
}

// Unlink removes name from parent.
func (t *Tree) Unlink(parent *Inode, name string) error {
	return t.inDir(parent, name, func(pfd int) error {
		t.keepUnnamed(parent, pfd, name)
		return unix.Unlinkat(pfd, name, 0)
	})
}

// Rmdir removes the empty directory name from parent.
func (t *Tree) Rmdir(parent *Inode, name string) error {
	return t.inDir(parent, name, func(pfd int) error {
		t.keepUnnamed(parent, pfd, name)
		return unix.Unlinkat(pfd, name, unix.AT_REMOVEDIR)
	})
}

// keepUnnamed pins the descriptor of the inode that name in parent (open
// as pfd) holds, when the table reopens it by that name: the name is about
// to be removed, and a client may still use the inode (an open file, a
// working directory), as it can on the lower filesystem. An inode never
// opened is left alone: nothing holds it open, and a walk that removes a
// tree opens nothing. Only trees that keep names (Tree.keepNames) look;
// elsewhere only a submount's inodes are reached by name, and those lose
// their name as they would on a filesystem without handles.
func (t *Tree) keepUnnamed(parent *Inode, pfd int, name string) {
	if !t.keepNames {
		return
	}
	var st unix.Stat_t
	if unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return
	}
	ino := t.ByKey(&st)
	if ino == nil || !t.fds.openedAt(ino, location{parent, name}) {
		return
	}
	if _, err := t.acquire(ino); err != nil {
		return
	}
	t.fds.pin(ino)
	t.Release(ino)
}

func (t *Tree) inDir(parent *Inode, name string, fn func(pfd int) error) error {
	if err := checkName(name); err != nil {
		return err
	}
	pfd, err := t.Acquire(parent)
	if err != nil {
		return err
	}
	defer t.Release(parent)
	return fn(pfd)
}

// Rename renames with renameat2 flags (RENAME_NOREPLACE, RENAME_EXCHANGE…).
func (t *Tree) Rename(oldParent *Inode, oldName string, newParent *Inode, newName string, flags uint32) error {
	return t.RenameMoved(oldParent, oldName, newParent, newName, flags, nil)
}

// Moved is what a rename moves, as it was found just before: the source
// and, for an exchange, the destination.
type Moved struct {
	Src, Dst         unix.Stat_t
	HaveSrc, HaveDst bool
}

// RenameMoved is Rename for a caller that has already looked at what moves
// (m); with a nil m it looks itself. Inodes not opened yet are known by name
// and move with it.
func (t *Tree) RenameMoved(oldParent *Inode, oldName string, newParent *Inode, newName string, flags uint32, m *Moved) error {
	if err := checkName(oldName); err != nil {
		return err
	}
	if err := checkName(newName); err != nil {
		return err
	}
	ofd, err := t.Acquire(oldParent)
	if err != nil {
		return err
	}
	defer t.Release(oldParent)
	nfd, err := t.Acquire(newParent)
	if err != nil {
		return err
	}
	defer t.Release(newParent)
	if m == nil {
		m = &Moved{}
		m.HaveSrc = unix.Fstatat(ofd, oldName, &m.Src, unix.AT_SYMLINK_NOFOLLOW) == nil
		m.HaveDst = flags&unix.RENAME_EXCHANGE != 0 && unix.Fstatat(nfd, newName, &m.Dst, unix.AT_SYMLINK_NOFOLLOW) == nil
	}
	if flags&unix.RENAME_EXCHANGE == 0 {
		t.keepUnnamed(newParent, nfd, newName) // a file renamed over loses its name
	}
	if err := unix.Renameat2(ofd, oldName, nfd, newName, uint(flags)); err != nil {
		return err
	}
	from, to := location{oldParent, oldName}, location{newParent, newName}
	if m.HaveSrc {
		t.relocate(&m.Src, from, to)
	}
	if m.HaveDst {
		t.relocate(&m.Dst, to, from)
	}
	return nil
}

// Readlink returns the target of the symlink ino.
func (t *Tree) Readlink(ino *Inode) ([]byte, error) {
	fd, err := t.Acquire(ino)
	if err != nil {
		return nil, err
	}
	defer t.Release(ino)
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return nil, err
		}
		if n < size {
			return buf[:n], nil
		}
	}
}

// Access checks access(2) mode bits on ino with the daemon's credentials.
func (t *Tree) Access(ino *Inode, mode uint32) error {
	fd, err := t.Acquire(ino)
	if err != nil {
		return err
	}
	defer t.Release(ino)
	return unix.Faccessat2(fd, "", mode, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW)
}

// Chmod sets the permission bits of ino (fchmodat2 with AT_EMPTY_PATH, which
// works on O_PATH descriptors and never follows a symlink).
func (t *Tree) Chmod(ino *Inode, mode uint32) error {
	fd, err := t.Acquire(ino)
	if err != nil {
		return err
	}
	defer t.Release(ino)
	err = unix.Fchmodat(fd, "", mode, unix.AT_EMPTY_PATH)
	if err == unix.EOPNOTSUPP && ino.Type != unix.S_IFLNK {
		// Kernels before 6.6 lack fchmodat2.
		return unix.Chmod(procPath(fd), mode)
	}
	return err
}

// Chown sets the owner and group of ino; -1 keeps one unchanged.
func (t *Tree) Chown(ino *Inode, uid, gid int) error {
	fd, err := t.Acquire(ino)
	if err != nil {
		return err
	}
	defer t.Release(ino)
	return unix.Fchownat(fd, "", uid, gid, unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW)
}

// Truncate sets the size of the regular file ino.
func (t *Tree) Truncate(ino *Inode, size int64) error {
	fd, err := t.Open(ino, unix.O_WRONLY)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Ftruncate(fd, size)
}

// Utimens sets access and modification times; UTIME_OMIT and UTIME_NOW work
// as in utimensat(2).
func (t *Tree) Utimens(ino *Inode, times *[2]unix.Timespec) error {
	fd, err := t.Acquire(ino)
	if err != nil {
		return err
	}
	defer t.Release(ino)
	return unix.UtimesNanoAt(fd, "", times[:], unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW)
}

// Path returns the current lower path of ino, for display only.
func (t *Tree) Path(ino *Inode) string {
	fd, err := t.acquire(ino)
	if err != nil {
		return "?"
	}
	defer t.Release(ino)
	p, err := readlinkString(procPath(fd))
	if err != nil {
		return "?"
	}
	return p
}

func readlinkString(path string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlink(path, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// Statx fills stx with the attributes of ino that mask asks for.
func (t *Tree) Statx(ino *Inode, mask uint32, stx *unix.Statx_t) error {
	fd, err := t.Acquire(ino)
	if err != nil {
		return err
	}
	defer t.Release(ino)
	return unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW, int(mask), stx)
}
