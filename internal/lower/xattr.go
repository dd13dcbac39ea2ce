package lower

import (
	"strconv"

	"golang.org/x/sys/unix"
)

// Extended attributes cannot be read through an O_PATH descriptor (nor by
// the *xattrat calls with AT_EMPTY_PATH, which want a real open file), so
// they go through the descriptor's magic link in /proc, which names the inode
// itself and not a path that could be swapped. A symlink has no such route
// without following it, so symlinks present no extended attributes, as in
// libfuse's passthrough_hp.

func procPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// GetXattr reads attribute name of ino into dest and returns its size; with
// an empty dest it returns the size only.
func (t *Tree) GetXattr(ino *Inode, name string, dest []byte) (int, error) {
	if ino.Type == unix.S_IFLNK {
		return 0, unix.ENODATA
	}
	fd, err := t.Acquire(ino)
	if err != nil {
		return 0, err
	}
	defer t.Release(ino)
	return unix.Getxattr(procPath(fd), name, dest)
}

// ListXattr lists the attribute names of ino, NUL-separated, into dest and
// returns the size; with an empty dest it returns the size only.
func (t *Tree) ListXattr(ino *Inode, dest []byte) (int, error) {
	if ino.Type == unix.S_IFLNK {
		return 0, nil
	}
	fd, err := t.Acquire(ino)
	if err != nil {
		return 0, err
	}
	defer t.Release(ino)
	return unix.Listxattr(procPath(fd), dest)
}

// SetXattr sets attribute name of ino; flags are XATTR_CREATE/XATTR_REPLACE.
func (t *Tree) SetXattr(ino *Inode, name string, data []byte, flags int) error {
	if ino.Type == unix.S_IFLNK {
		return unix.EPERM
	}
	fd, err := t.Acquire(ino)
	if err != nil {
		return err
	}
	defer t.Release(ino)
	return unix.Setxattr(procPath(fd), name, data, flags)
}

// RemoveXattr removes attribute name of ino.
func (t *Tree) RemoveXattr(ino *Inode, name string) error {
	if ino.Type == unix.S_IFLNK {
		return unix.ENODATA
	}
	fd, err := t.Acquire(ino)
	if err != nil {
		return err
	}
	defer t.Release(ino)
	return unix.Removexattr(procPath(fd), name)
}
