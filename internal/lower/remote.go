package lower

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Filesystem types (statfs f_type) whose files other hosts or another
// daemon may change without the local kernel seeing it: fanotify reports
// only changes made through this kernel's VFS. FUSE is among them: its
// daemon may serve a remote store (sshfs, GlusterFS's client) or change
// its files behind the kernel's back.
var remoteTypes = map[int64]string{
	unix.FUSE_SUPER_MAGIC:  "fuse",
	unix.NFS_SUPER_MAGIC:   "nfs",
	unix.CIFS_SUPER_MAGIC:  "cifs",
	unix.SMB2_SUPER_MAGIC:  "smb2",
	unix.SMB_SUPER_MAGIC:   "smb",
	unix.CEPH_SUPER_MAGIC:  "ceph",
	0x01161970:             "gfs2", // GFS2_MAGIC
	unix.OCFS2_SUPER_MAGIC: "ocfs2",
	unix.AFS_FS_MAGIC:      "afs",
	unix.AFS_SUPER_MAGIC:   "afs",
	unix.CODA_SUPER_MAGIC:  "coda",
	unix.V9FS_MAGIC:        "9p",
	0x0bd00bd0:             "lustre", // LL_SUPER_MAGIC
	0x47504653:             "gpfs",
	0x20030528:             "orangefs",
}

// localTypes names common local filesystems, for status.
var localTypes = map[int64]string{
	unix.EXT4_SUPER_MAGIC:      "ext4", // ext2 and ext3 too
	unix.XFS_SUPER_MAGIC:       "xfs",
	unix.BTRFS_SUPER_MAGIC:     "btrfs",
	unix.TMPFS_MAGIC:           "tmpfs",
	unix.OVERLAYFS_SUPER_MAGIC: "overlay",
	unix.F2FS_SUPER_MAGIC:      "f2fs",
	0x2fc12fc1:                 "zfs",
}

// FSInfo is what the tree found out about its lower filesystem at Open.
type FSInfo struct {
	// Type names the filesystem (remoteTypes, localTypes), else it is its
	// statfs magic number in hex.
	Type string
	// Remote is true for a network or FUSE filesystem (see remoteTypes):
	// changes made elsewhere are not seen by fanotify, and file handles,
	// where there are any, may go stale.
	Remote bool
	// Handles is true when inodes are reopened by file handle; false when
	// they are reopened by name (see Tree.keepNames).
	Handles bool
}

// fsInfo reads the type of the filesystem behind fd.
func fsInfo(fd int) FSInfo {
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return FSInfo{Type: "unknown"}
	}
	if name, ok := remoteTypes[int64(sfs.Type)]; ok {
		return FSInfo{Type: name, Remote: true}
	}
	if name, ok := localTypes[int64(sfs.Type)]; ok {
		return FSInfo{Type: name}
	}
	return FSInfo{Type: fmt.Sprintf("0x%x", uint64(sfs.Type))}
}

// Reopens counts how the tree reached inodes whose descriptor it had
// given back.
type Reopens struct {
	// ByPath counts inodes reopened by their name in their parent, checked
	// to be the same (dev, ino): on a tree without usable file handles.
	ByPath uint64
	// StaleHandles counts reopens by handle that failed with ESTALE; on a
	// remote filesystem the inode is then reopened by name when it has one.
	StaleHandles uint64
}
