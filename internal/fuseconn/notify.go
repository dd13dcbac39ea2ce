package fuseconn

import (
	"errors"
	"syscall"
	"unsafe"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// InodeNotify tells the kernel to drop the attributes of node and the data
// it caches of it from off for length bytes (0: to the end; a negative off:
// attributes only), as fuse.Server.InodeNotify does.
func (c *Conn) InodeNotify(node uint64, off int64, length int64) fuse.Status {
	body := fuse.NotifyInvalInodeOut{Ino: node, Off: off, Length: length}
	return c.notify(fuse.NOTIFY_INVAL_INODE, bytesOf(&body), nil)
}

// EntryNotify tells the kernel to drop the entry name of directory parent,
// as fuse.Server.EntryNotify does.
func (c *Conn) EntryNotify(parent uint64, name string) fuse.Status {
	body := fuse.NotifyInvalEntryOut{Parent: parent, NameLen: uint32(len(name))}
	// The name is NUL-terminated, as the kernel wants it.
	return c.notify(fuse.NOTIFY_INVAL_ENTRY, bytesOf(&body), append([]byte(name), 0))
}

// notify writes a notification: a reply header with unique 0 and the
// notification code in place of the error, then body and payload, in one
// write. go-fuse's NOTIFY_* codes are negative, as they pass for a status
// that its replies negate into the header; the kernel reads the code
// (enum fuse_notify_code) as a positive number.
func (c *Conn) notify(code int32, body, payload []byte) fuse.Status {
	hdrSize := int(unsafe.Sizeof(fuse.OutHeader{}))
	msg := make([]byte, hdrSize, hdrSize+len(body)+len(payload))
	*(*fuse.OutHeader)(unsafe.Pointer(&msg[0])) = fuse.OutHeader{
		Length: uint32(cap(msg)),
		Status: -code,
	}
	msg = append(append(msg, body...), payload...)
	err := c.write(msg)
	var errno syscall.Errno
	switch {
	case err == nil:
		return fuse.OK
	case errors.Is(err, unix.EINVAL):
		// The kernel's answer to a notification it does not know.
		return fuse.ENOSYS
	case errors.As(err, &errno):
		return fuse.Status(errno)
	}
	return fuse.EBADF // the descriptor is closed
}

// bytesOf returns the memory of *v, a wire struct, as bytes.
func bytesOf[T any](v *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))
}

// The ioctls of /dev/fuse that open and close passthrough backing files
// (FUSE_DEV_IOC_BACKING_OPEN and _CLOSE in include/uapi/linux/fuse.h):
// _IOW(229, 1, struct fuse_backing_map) and _IOW(229, 2, uint32_t).
const (
	iocBackingOpen  = 0x4010e501
	iocBackingClose = 0x4004e502
)

// RegisterBackingFd registers m's descriptor as a backing file for
// passthrough and returns its backing id, as fuse.Server.RegisterBackingFd
// does.
func (c *Conn) RegisterBackingFd(m *fuse.BackingMap) (int32, syscall.Errno) {
	var id uintptr
	errno := c.ioctl(iocBackingOpen, unsafe.Pointer(m), &id)
	return int32(id), errno
}

// UnregisterBackingFd closes the backing file with id.
func (c *Conn) UnregisterBackingFd(id int32) syscall.Errno {
	return c.ioctl(iocBackingClose, unsafe.Pointer(&id), nil)
}

// ioctl runs ioctl req with arg on the descriptor and stores its result in
// ret, if not nil.
func (c *Conn) ioctl(req uintptr, arg unsafe.Pointer, ret *uintptr) syscall.Errno {
	err := c.control(func(fd int) error {
		r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
		if errno != 0 {
			return errno
		}
		if ret != nil {
			*ret = r
		}
		return nil
	})
	var errno syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.As(err, &errno):
		return errno
	}
	return syscall.EBADF
}
