package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// mountExt4Image makes a new ext4 filesystem (mkfs.ext4's defaults, so with
// a journal) in a sparse file img of size bytes, attaches it to a free loop
// device with direct I/O and mounts it on dir. It returns how the lower is
// made, for the report.
//
// A filesystem of its own makes the ext4 rows the same from machine to
// machine and from run to run: a journal as ext4 usually has one, nothing
// else writing to it, and creates that do not depend on what the root
// filesystem deleted lately (without a journal, ext4 passes over inodes
// deleted in the last minute when it allocates one). Direct I/O keeps the
// image file out of the page cache, so a cold read goes to the disk once.
func mountExt4Image(img, dir string, size int64) (string, error) {
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		return "", err
	}
	if err := os.Truncate(img, size); err != nil {
		return "", fmt.Errorf("size the ext4 image: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// Initialise the inode tables and the journal now, not in the
	// background during the run.
	out, err := exec.CommandContext(ctx, "mkfs.ext4", "-q", "-F", "-E", "lazy_itable_init=0,lazy_journal_init=0,nodiscard", img).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("mkfs.ext4 %s: %v: %s", img, err, strings.TrimSpace(string(out)))
	}
	dev, err := attachLoop(img)
	if err != nil {
		return "", fmt.Errorf("attach %s to a loop device: %w", img, err)
	}
	// The loop device detaches itself when its last user, the mount,
	// goes away; until the mount is made, dev.f is that user.
	defer dev.f.Close()
	if err := unix.Mount(dev.path, dir, "ext4", unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return "", fmt.Errorf("mount %s (%s) on %s: %w", dev.path, img, dir, err)
	}
	io := "buffered I/O: the kernel declined direct I/O"
	if b, err := os.ReadFile("/sys/block/" + strings.TrimPrefix(dev.path, "/dev/") + "/loop/dio"); err == nil && strings.TrimSpace(string(b)) == "1" {
		io = "direct I/O"
	}
	return fmt.Sprintf("a new ext4 in a %d GiB image file under -dir, on a loop device with %s", size>>30, io), nil
}

// loopDev is an attached loop device, held open.
type loopDev struct {
	path string
	f    *os.File
}

// attachLoop attaches img to a free loop device with direct I/O and
// autoclear (the device detaches when it is last closed).
func attachLoop(img string) (loopDev, error) {
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return loopDev{}, err
	}
	defer ctl.Close()
	back, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		return loopDev{}, err
	}
	defer back.Close() // the loop device holds its own reference
	for try := 0; ; try++ {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return loopDev{}, fmt.Errorf("get a free loop device: %w", err)
		}
		path := fmt.Sprintf("/dev/loop%d", n)
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return loopDev{}, err
		}
		cfg := unix.LoopConfig{Fd: uint32(back.Fd()), Size: 4096}
		cfg.Info.Flags = unix.LO_FLAGS_AUTOCLEAR | unix.LO_FLAGS_DIRECT_IO
		err = unix.IoctlLoopConfigure(int(f.Fd()), &cfg)
		if err == nil {
			return loopDev{path: path, f: f}, nil
		}
		f.Close()
		// Another program may have taken the device in between.
		if !errors.Is(err, unix.EBUSY) || try == 4 {
			return loopDev{}, fmt.Errorf("configure %s: %w", path, err)
		}
	}
}
