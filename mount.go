package sievefs

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/hanwen/go-fuse/v2/splice"
	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/internal/chain"
	"github.com/sievefs/sievefs/internal/fusermount"
	"github.com/sievefs/sievefs/internal/lower"
)

// Errors that Mount wraps, so that callers can tell bad input apart.
var (
	ErrLower                  = errors.New("bad lower directory")
	ErrMountpoint             = errors.New("bad mountpoint")
	ErrMountpointBusy         = errors.New("mountpoint is already a mount in use")
	ErrDeadMount              = errors.New("mountpoint is a dead FUSE mount (its daemon died)")
	ErrStackingLoop           = errors.New("lower directory and mountpoint overlap")
	ErrNoFuse                 = errors.New("FUSE is not available")
	ErrPassthroughUnavailable = errors.New("FUSE passthrough is unavailable")
	ErrMountOption            = errors.New("mount option refused")
	ErrRules                  = errors.New("bad rules")
)

// Mount is a mounted sievefs view.
type Mount struct {
	// Lower and Mountpoint are the absolute, resolved paths.
	Lower, Mountpoint string

	opts   Options
	tree   *lower.Tree
	fs     *fileSystem
	server server

	dev         uint64 // device number of the mount: names its FUSE connection
	unmountOnce sync.Once
	unmountErr  error
	done        chan struct{}
}

// MountView mounts a view of the lower directory on mountpoint and serves it
// in the background until Unmount, or until it is unmounted from outside
// (see Wait). Nothing is left mounted when it returns an error.
//
// MountView sets the process umask to 0: the kernel has already applied the
// client's umask to the modes of files it creates, and the daemon must not
// apply its own on top.
func MountView(lowerDir, mountpoint string, opts Options) (*Mount, error) {
	opts.setDefaults()
	if _, err := ParseTransport(string(opts.Transport)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMountOption, err)
	}
	root := os.Geteuid() == 0
	flags, words, err := mountFlags(opts, root)
	if err != nil {
		return nil, err
	}
	if err := checkNames(opts); err != nil {
		return nil, err
	}
	rules, err := newChain(opts.Rules)
	if err != nil {
		return nil, err
	}
	low, mnt, err := checkPaths(lowerDir, mountpoint)
	if err != nil {
		return nil, err
	}
	lower.RaiseFDLimit()
	unix.Umask(0)
	opts.MaxInodeFDs = newFDBudget(opts.MaxFDs, opts.MaxInodeFDs).Inodes
	tree, err := lower.Open(low, lower.Options{
		MaxFDs: opts.MaxInodeFDs,
		// A directory moved out of the tree underneath the mount is
		// refused within what the kernel may cache anyway, and 1 s.
		RecheckAfter: min(opts.Cache.timeout(), time.Second),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrLower, err)
	}
	if opts.MaxBacking == 0 {
		opts.MaxBacking = lower.DefaultMaxFDs() / 2
	}
	fs := newFileSystem(tree, opts, rules)
	fs.watch()
	mopts := &fuse.MountOptions{
		AllowOther:    opts.AllowOther,
		FsName:        cmp.Or(opts.FsName, low),
		Name:          cmp.Or(opts.Subtype, "sievefs"),
		DirectMount:   true,
		MaxWrite:      maxRequest,
		MaxReadAhead:  maxRequest,
		MaxBackground: 64,
		MaxStackDepth: opts.MaxStackDepth,
		Debug:         opts.FuseDebug,
		// The daemon clears set-ID bits on write (so that the kernel need
		// not ask for security.capability before every passthrough write),
		// and daemon-served files may be mapped.
		// The mount gives out no file handles (name_to_handle_at fails
		// with EOPNOTSUPP, as on libfuse's passthrough_hp): the kernel's
		// handles name FUSE node IDs, which turn stale once the kernel
		// forgets the inode, and the daemon cannot find a node it forgot.
		// fanotify's handles (AT_HANDLE_FID) still work.
		// READDIRPLUS_AUTO lets the kernel ask for attributes with a
		// listing only when the lister stats what it lists (ls -l, find
		// -type on a filesystem without d_type): a cold ls -f of 18,000
		// entries made 270 READDIRPLUS requests, and makes 38 READDIR and
		// 92 READDIRPLUS with it, in a fifth of the time.
		ExtraCapabilities: fuse.CAP_HANDLE_KILLPRIV_V2 | fuse.CAP_DIRECT_IO_ALLOW_MMAP | fuse.CAP_NO_EXPORT_SUPPORT | fuse.CAP_READDIRPLUS_AUTO,
		Logger:            newStdLogger(opts.Logger),
	}
	if root {
		mopts.DirectMountStrict = true
	}
	mopts.DirectMountFlags = flags
	mopts.Options = words
	if opts.DefaultPermissions {
		mopts.Options = append(mopts.Options, "default_permissions")
	}
	// flock goes to the lower file; POSIX record locks stay with the
	// kernel (their release needs a FLUSH on every close).
	mopts.EnableLocks = true
	mopts.DisabledCapabilities |= fuse.CAP_POSIX_LOCKS
	if opts.Passthrough == PassthroughOff {
		mopts.DisabledCapabilities |= fuse.CAP_PASSTHROUGH
	}
	if opts.Cache != CacheNever {
		mopts.EnableSymlinkCaching = true
	}
	server, err := newServer(opts.Transport, fs, mnt, mopts)
	if err != nil {
		tree.Close()
		if !root {
			return nil, fusermountError(low, mnt, words, err)
		}
		return nil, fmt.Errorf("mount %s on %s (transport %s): %w", low, mnt, opts.Transport, err)
	}
	m := &Mount{Lower: low, Mountpoint: mnt, opts: opts, tree: tree, fs: fs, server: server, done: make(chan struct{})}
	go func() {
		server.Serve()
		fs.closeHandles()
		tree.Close()
		close(m.done)
	}()
	if err := server.WaitMount(); err != nil {
		m.Unmount()
		return nil, fmt.Errorf("mount %s on %s: %w", low, mnt, err)
	}
	fs.startCaching()
	var st unix.Stat_t
	if err := unix.Stat(mnt, &st); err == nil {
		m.dev = st.Dev
	}
	readahead, err := raiseReadahead(m.dev, spliceableRead())
	if err != nil {
		opts.Logger.Debug("readahead of daemon-served files stays as the kernel set it", "err", err)
	}
	if fs.pt == nil {
		if opts.Passthrough == PassthroughRequire {
			m.Unmount()
			return nil, fmt.Errorf("%w: %s", ErrPassthroughUnavailable, fs.ptReason)
		}
		opts.Logger.Warn("passthrough unavailable, the daemon serves file data", "reason", fs.ptReason)
	}
	opts.Logger.Info("mounted", "lower", low, "mountpoint", mnt, "transport", string(opts.Transport), "passthrough", fs.pt != nil,
		"handles", tree.HandlesSupported(), "readahead_kb", readahead/1024)
	return m, nil
}

// Wait blocks until the mount is gone (Unmount, or umount from outside).
func (m *Mount) Wait() { <-m.done }

// Done is closed when the mount is gone.
func (m *Mount) Done() <-chan struct{} { return m.done }

// DefaultUnmountGrace is Options.UnmountGrace when it is zero.
const DefaultUnmountGrace = 5 * time.Second

// Unmount unmounts the view and waits for the daemon to finish serving it.
// A mount still in use is detached at once (nothing new can reach it); files
// still open get Options.UnmountGrace to be closed, then the FUSE connection is
// aborted and their further operations fail. Data written through
// passthrough or acknowledged by the daemon is on the lower tree already.
func (m *Mount) Unmount() error {
	m.unmountOnce.Do(func() {
		if err := m.server.Unmount(); err == nil {
			return
		}
		if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil {
			m.unmountErr = fmt.Errorf("unmount %s: %w", m.Mountpoint, err)
			return
		}
		select {
		case <-m.done:
		case <-time.After(m.opts.UnmountGrace):
			m.opts.Logger.Warn("files still open after unmount, aborting the FUSE connection", "mountpoint", m.Mountpoint)
			if err := abortConnection(m.dev); err != nil {
				m.unmountErr = fmt.Errorf("abort FUSE connection of %s: %w", m.Mountpoint, err)
			}
		}
	})
	if m.unmountErr == nil {
		<-m.done
	}
	return m.unmountErr
}

// checkNames refuses a source (FsName) or type (Subtype) the mount table
// cannot hold as given: a comma separates fusermount3's options, and
// control characters have no place in either.
func checkNames(opts Options) error {
	for _, c := range opts.FsName {
		if c == ',' || unicode.IsControl(c) {
			return fmt.Errorf("%w: fsname %q: no commas or control characters", ErrMountOption, opts.FsName)
		}
	}
	for _, c := range opts.Subtype {
		if !(c < utf8.RuneSelf && (unicode.IsLetter(c) || unicode.IsDigit(c) || strings.ContainsRune("._-+", c))) {
			return fmt.Errorf("%w: subtype %q: only letters, digits and . _ - +", ErrMountOption, opts.Subtype)
		}
	}
	return nil
}

// mountFlags returns the mount flags of a view with opts: the flags of a
// direct mount(2), which a daemon running as root makes, and the option
// words for go-fuse, which it passes to fusermount3 for other users and
// turns partly into flags itself on a direct mount. It refuses what cannot
// be had: suid and dev for a daemon not running as root, since fusermount3
// would mount nosuid,nodev anyway and only warn.
//
// go-fuse's direct mount turns the words noexec, suid and dev into flags,
// and passes the rest in the option string of mount(2), where the kernel
// takes ro but refuses the atime and nosymfollow words (EINVAL). So as root
// these go as flags, and as another user as words, which fusermount3 turns
// into flags (relatime, the kernel's default, needs no word there).
func mountFlags(opts Options, root bool) (flags uintptr, words []string, err error) {
	if !root {
		for _, o := range []struct {
			set  bool
			word string
		}{{opts.Suid, "suid"}, {opts.Dev, "dev"}} {
			if o.set {
				return 0, nil, fmt.Errorf("%w: %s: only a daemon running as root can mount a view %s; "+
					"fusermount3 mounts every other user's view nosuid,nodev", ErrMountOption, o.word, o.word)
			}
		}
	}
	flags = unix.MS_NOSUID | unix.MS_NODEV
	if opts.ReadOnly {
		flags |= unix.MS_RDONLY
		words = append(words, "ro")
	}
	for _, o := range []struct {
		set  bool
		word string
	}{{opts.NoExec, "noexec"}, {opts.Suid, "suid"}, {opts.Dev, "dev"}} {
		if o.set {
			words = append(words, o.word)
		}
	}
	var atime uintptr
	switch opts.Atime {
	case AtimeDefault:
	case AtimeRelative:
		atime = unix.MS_RELATIME
	case AtimeStrict:
		atime = unix.MS_STRICTATIME
	case AtimeNever:
		atime = unix.MS_NOATIME
	default:
		return 0, nil, fmt.Errorf("%w: atime mode %q: want relatime, strictatime or noatime", ErrMountOption, opts.Atime)
	}
	if root {
		flags |= atime
	} else if opts.Atime != AtimeDefault && opts.Atime != AtimeRelative {
		words = append(words, string(opts.Atime))
	}
	for _, o := range []struct {
		set  bool
		flag uintptr
		word string
	}{{opts.NoDirAtime, unix.MS_NODIRATIME, "nodiratime"}, {opts.NoSymFollow, unix.MS_NOSYMFOLLOW, "nosymfollow"}} {
		switch {
		case !o.set:
		case root:
			flags |= o.flag
		default:
			words = append(words, o.word)
		}
	}
	return flags, words, nil
}

// fusermountError explains a mount that failed without root, through
// fusermount3: it is missing (ErrNoFuse), or it refused. fusermount3 printed
// its reason on standard error, which the mount helper discards; the error
// names what it was given. go-fuse's error ("fusermount exited with code
// 256") says no more than that it failed.
func fusermountError(low, mnt string, words []string, err error) error {
	if _, perr := fusermount.Path(); perr != nil {
		return fmt.Errorf("%w: %w", ErrNoFuse, perr)
	}
	given := ""
	if len(words) > 0 {
		given = " with " + strings.Join(words, ",")
	}
	return fmt.Errorf("mount %s on %s through fusermount3%s: fusermount3 refused (%s; it printed why on standard error)%s",
		low, mnt, given, strings.TrimSpace(err.Error()), fusermountHint(words))
}

// fusermountHint says why fusermount3 may have refused words: it refuses
// options it does not know, and version 3.14 (Debian 12) does not know these.
func fusermountHint(words []string) string {
	var newer []string
	for _, w := range words {
		switch w {
		case "strictatime", "nodiratime", "nosymfollow":
			newer = append(newer, w)
		}
	}
	if len(newer) == 0 {
		return ""
	}
	return fmt.Sprintf(" (fusermount3 refuses options it does not know, and 3.14 does not know %s)", strings.Join(newer, ", "))
}

// maxRequest is the largest READ and WRITE the daemon takes (max_read and
// max_write), the most the kernel sends by default (256 pages).
const maxRequest = 1 << 20

// spliceableRead is the largest READ reply go-fuse can splice from the
// lower file to /dev/fuse, at most maxRequest: its pipe holds the reply
// header, the data and a spare page, and grows no larger than
// /proc/sys/fs/pipe-max-size (1 MiB by default; more needs CAP_SYS_RESOURCE),
// as go-fuse read it at start. A larger reply is copied through the daemon's
// memory instead, which made a cold sequential read about a third slower.
func spliceableRead() int {
	page := os.Getpagesize()
	size := min(maxRequest, splice.MaxPipeSize()-2*page)
	return max(page, size&^(page-1))
}

// raiseReadahead raises the readahead of the mount with device dev to size
// and returns what it is. The kernel starts a FUSE mount's readahead at
// 128 KiB and the INIT reply can only lower it, so a sequential read of a
// daemon-served file would come as 128 KiB READs although the daemon takes
// 1 MiB ones; the readahead of the mount's backing device info in sysfs is
// the one knob, and only root may turn it. Passthrough files read ahead on
// the lower file and are not affected.
func raiseReadahead(dev uint64, size int) (int, error) {
	path := fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", unix.Major(dev), unix.Minor(dev))
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read readahead: %w", err)
	}
	kb, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("read readahead from %s: %w", path, err)
	}
	if kb*1024 >= size {
		return kb * 1024, nil
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(size/1024)), 0); err != nil {
		return kb * 1024, fmt.Errorf("raise readahead: %w", err)
	}
	return size, nil
}

// fusectl is where the kernel's FUSE control filesystem is mounted.
const fusectl = "/sys/fs/fuse/connections"

// abortConnection aborts the FUSE connection of the mount with device dev,
// mounting the FUSE control filesystem first if need be.
func abortConnection(dev uint64) error {
	ctl := fmt.Sprintf("%s/%d/abort", fusectl, unix.Minor(dev))
	if _, err := os.Stat(ctl); err != nil {
		if err := unix.Mount("fusectl", fusectl, "fusectl", 0, ""); err != nil && err != unix.EBUSY {
			return fmt.Errorf("mount fusectl: %w", err)
		}
	}
	return os.WriteFile(ctl, []byte("1"), 0)
}

// checkPaths resolves the lower directory and the mountpoint and refuses
// what cannot work: missing paths, non-directories, a mountpoint that is
// already a mount, overlapping trees, no /dev/fuse.
func checkPaths(lowerDir, mountpoint string) (low, mnt string, err error) {
	low, err = resolveDir(lowerDir)
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrLower, err)
	}
	if dead, _ := isDeadMount(mountpoint); dead {
		return "", "", fmt.Errorf("%w: %s", ErrDeadMount, mountpoint)
	}
	mnt, err = resolveDir(mountpoint)
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrMountpoint, err)
	}
	busy, err := isMountpoint(mnt)
	if err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrMountpoint, err)
	}
	if busy {
		return "", "", fmt.Errorf("%w: %s", ErrMountpointBusy, mnt)
	}
	if within(mnt, low) || within(low, mnt) {
		return "", "", fmt.Errorf("%w: lower %s, mountpoint %s", ErrStackingLoop, low, mnt)
	}
	if err := checkFuse(); err != nil {
		return "", "", err
	}
	return low, mnt, nil
}

// checkFuse refuses a mount for want of FUSE: /dev/fuse missing, or closed
// to the daemon's user. A daemon not running as root mounts through
// fusermount3, which is set-user-ID root but opens /dev/fuse with the
// user's rights, and fails with nothing more than "fusermount exited with
// code 256" to show for it; opening it here, with the same rights, says why.
func checkFuse() error {
	const dev = "/dev/fuse"
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if err == nil {
		return f.Close()
	}
	uid := os.Geteuid()
	var st unix.Stat_t
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
		return fmt.Errorf("%w: %w: is the fuse module loaded? (modprobe fuse)", ErrNoFuse, err)
	case uid != 0 && errors.Is(err, os.ErrPermission) && unix.Stat(dev, &st) == nil:
		return fmt.Errorf("%w: uid %d may not open %s (mode %04o, owner uid %d, group %d): "+
			"fusermount3 opens it with the mounting user's rights, so that user must be able to read "+
			"and write it (mode 0666, as most systems make it)", ErrNoFuse, uid, dev, st.Mode&0o7777, st.Uid, st.Gid)
	}
	return fmt.Errorf("%w: %w", ErrNoFuse, err)
}

// resolveDir returns the absolute path of dir with symlinks resolved, and
// fails unless it is a directory.
func resolveDir(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", err
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%s: not a directory", dir)
	}
	return real, nil
}

// within reports whether path is dir or lies under it.
func within(path, dir string) bool {
	return path == dir || strings.HasPrefix(path, strings.TrimSuffix(dir, "/")+"/")
}

// isMountpoint reports whether path is the mountpoint of a mount in this
// namespace. When the mount table cannot be read it says so: mounting
// over a mount in use unseen would hide it.
func isMountpoint(path string) (bool, error) {
	mounts, err := ReadMountinfo()
	if err != nil {
		return false, err
	}
	for _, mi := range mounts {
		if mi.Mountpoint == path {
			return true, nil
		}
	}
	return false, nil
}

// isDeadMount reports whether path is a FUSE mount whose daemon is gone.
// statfs is never answered from the kernel's caches, unlike stat.
func isDeadMount(path string) (bool, error) {
	var st unix.Statfs_t
	err := unix.Statfs(path, &st)
	return err == unix.ENOTCONN, err
}

// MountInfo is one line of /proc/self/mountinfo.
type MountInfo struct {
	Mountpoint   string
	FSType       string
	Source       string
	MountOptions string // comma-separated flags of the mount (rw, nosuid, noexec, relatime, …)
	SuperOptions string // comma-separated (user_id=…, allow_other, …)
}

// ReadMountinfo lists the mounts of this process's mount namespace, in mount
// order.
func ReadMountinfo() ([]MountInfo, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("list mounts: %w", err)
	}
	var out []MountInfo
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL…] - FSTYPE SOURCE SUPEROPTS
		i := 6
		for i < len(f) && f[i] != "-" {
			i++
		}
		if i+3 >= len(f) {
			continue
		}
		out = append(out, MountInfo{Mountpoint: unescapeMount(f[4]), FSType: f[i+1], Source: unescapeMount(f[i+2]),
			MountOptions: f[5], SuperOptions: f[i+3]})
	}
	return out, nil
}

// unescapeMount undoes the octal escapes (\040 for a space…) of
// /proc/self/mountinfo.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// ErrNoRules is returned by SetRules on a mount made with nil Options.Rules.
var ErrNoRules = errors.New("mounted without rules (Options.Rules is nil): they cannot be changed")

// SetRules replaces the rules of a running mount (a policy reload) and
// drops what the kernel cached under the old ones: entries by name, and
// attributes. Requests already under way finish with the old rules. Files
// already open stay open. Rules that do not make a chain are refused
// (ErrRules) and the old ones stay.
func (m *Mount) SetRules(rules []filter.Rule) error {
	if m.fs.filters.Load() == nil {
		return ErrNoRules
	}
	c, err := newChain(rules)
	if err != nil {
		return err
	}
	if c == nil {
		c = emptyChain
	}
	m.fs.filters.Store(c)
	m.fs.invalidateAll()
	return nil
}

// newChain makes the chain of rules; nil rules make a nil chain (a mount
// that does not track paths).
func newChain(rules []filter.Rule) (*chain.Chain, error) {
	if rules == nil {
		return nil, nil
	}
	c, err := chain.New(rules...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrRules, err)
	}
	return c, nil
}
