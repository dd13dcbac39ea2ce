package fuseconn

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs/internal/fusermount"
)

// mountFusermount mounts through fusermount3, for a process not running as
// root, as go-fuse does: fusermount3 opens /dev/fuse, mounts it on
// mountpoint and sends the descriptor back over the socket named by
// _FUSE_COMMFD. It returns that descriptor.
func mountFusermount(mountpoint string, opts *fuse.MountOptions) (int, error) {
	bin, err := fusermount.Path()
	if err != nil {
		return -1, err
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socketpair: %w", err)
	}
	local, remote := os.NewFile(uintptr(pair[0]), "fusermount-local"), os.NewFile(uintptr(pair[1]), "fusermount-remote")
	defer local.Close()
	defer remote.Close()
	cmd := exec.Command(bin, mountpoint, "-o", strings.Join(fusermountOptions(opts), ","))
	cmd.Env = append(os.Environ(), "_FUSE_COMMFD=3")
	cmd.ExtraFiles = []*os.File{remote} // descriptor 3
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return -1, fmt.Errorf("%s: %s (%w)", bin, strings.TrimSpace(stderr.String()), err)
	}
	return receiveFD(pair[0])
}

// fusermountOptions are the -o options for fusermount3, as go-fuse passes
// them: opts.Options, allow_other, fsname, subtype and max_read, with commas
// and backslashes escaped.
func fusermountOptions(opts *fuse.MountOptions) []string {
	words := append([]string{}, opts.Options...)
	if opts.AllowOther {
		words = append(words, "allow_other")
	}
	if opts.FsName != "" {
		words = append(words, "fsname="+opts.FsName)
	}
	if opts.Name != "" {
		words = append(words, "subtype="+opts.Name)
	}
	words = append(words, fmt.Sprintf("max_read=%d", opts.MaxWrite))
	esc := strings.NewReplacer(`\`, `\\`, `,`, `\,`)
	for i, w := range words {
		words[i] = esc.Replace(w)
	}
	return words
}

// receiveFD receives the one descriptor fusermount3 sends on socket sock.
func receiveFD(sock int) (int, error) {
	data := make([]byte, 4)
	oob := make([]byte, unix.CmsgSpace(4))
	var oobn int
	err := retry(func() (err error) {
		_, oobn, _, _, err = unix.Recvmsg(sock, data, oob, unix.MSG_CMSG_CLOEXEC)
		return err
	})
	if err != nil {
		return -1, fmt.Errorf("receive the FUSE descriptor from fusermount3: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return -1, fmt.Errorf("receive the FUSE descriptor from fusermount3: %d control messages (%v)", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return -1, fmt.Errorf("receive the FUSE descriptor from fusermount3: %d descriptors (%v)", len(fds), err)
	}
	return fds[0], nil
}
