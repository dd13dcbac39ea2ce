package sievefs

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/sievefs/sievefs/filter"
)

// PassthroughMode says when file data goes through the kernel's FUSE
// passthrough instead of the daemon.
type PassthroughMode string

const (
	// PassthroughAuto uses passthrough when the kernel and the daemon's
	// privileges allow it, and otherwise serves data itself, saying why once.
	PassthroughAuto PassthroughMode = "auto"
	// PassthroughOff always serves data from the daemon.
	PassthroughOff PassthroughMode = "off"
	// PassthroughRequire fails the mount when passthrough is unavailable.
	PassthroughRequire PassthroughMode = "require"
)

// ParsePassthroughMode parses auto, off or require.
func ParsePassthroughMode(s string) (PassthroughMode, error) {
	switch m := PassthroughMode(s); m {
	case PassthroughAuto, PassthroughOff, PassthroughRequire:
		return m, nil
	}
	return "", fmt.Errorf("passthrough mode %q: want auto, off or require", s)
}

// CacheMode says how long the kernel may trust what it cached.
type CacheMode string

const (
	// CacheAuto caches entries and attributes for one second and keeps file
	// data cached until the lower file's size or mtime changes. It suits a
	// lower tree that is changed underneath the mount now and then.
	CacheAuto CacheMode = "auto"
	// CacheWatch watches the lower tree for changes made beside the mount
	// (fanotify; with CAP_SYS_ADMIN, on a local filesystem) and lets the
	// kernel cache entries and attributes for an hour, dropping each when
	// it changes; where it cannot watch, it caches them for one second.
	// Warm metadata runs at the kernel's speed; a first lookup and small
	// writes cost more (see docs/operations.md, Caching).
	CacheWatch CacheMode = "watch"
	// CacheAlways caches for a day: for a lower tree changed only through
	// the mount.
	CacheAlways CacheMode = "always"
	// CacheNever caches nothing, for a lower tree that others change all the
	// time; daemon-served data is read with direct I/O.
	CacheNever CacheMode = "never"
)

// ParseCacheMode parses auto, watch, always or never.
func ParseCacheMode(s string) (CacheMode, error) {
	switch m := CacheMode(s); m {
	case CacheAuto, CacheWatch, CacheAlways, CacheNever:
		return m, nil
	}
	return "", fmt.Errorf("cache mode %q: want auto, watch, always or never", s)
}

// timeout is how long the kernel may cache entries and attributes of what
// is not watched (see watchTimeout).
func (m CacheMode) timeout() time.Duration {
	switch m {
	case CacheAlways:
		return 24 * time.Hour
	case CacheNever:
		return 0
	}
	return time.Second
}

// AtimeMode is how a mount records access times: one of the atime mount
// flags. The kernel keeps no access times of its own for FUSE files, so on a
// view the flag is recorded on the mount (and shown in /proc/self/mountinfo)
// but does not change what the view shows: its access times are those of
// the lower files, which reads through the view update as the lower
// filesystem's own mount options say.
type AtimeMode string

const (
	// AtimeDefault sets no atime flag: the kernel's default, relatime.
	AtimeDefault AtimeMode = ""
	// AtimeRelative is relatime (MS_RELATIME).
	AtimeRelative AtimeMode = "relatime"
	// AtimeStrict is strictatime (MS_STRICTATIME).
	AtimeStrict AtimeMode = "strictatime"
	// AtimeNever is noatime (MS_NOATIME).
	AtimeNever AtimeMode = "noatime"
)

// Options configure a mount. The zero value is a private, read-write mount
// with passthrough when available and CacheAuto, mounted exec, nosuid and
// nodev with the kernel's default atime handling.
type Options struct {
	// Passthrough is the passthrough mode; empty means PassthroughAuto.
	Passthrough PassthroughMode
	// Cache is the cache mode; empty means CacheAuto.
	Cache CacheMode
	// ReadOnly mounts read-only (MS_RDONLY, "ro").
	ReadOnly bool
	// NoExec mounts noexec (MS_NOEXEC): the kernel refuses to execute files
	// of the view (execve fails with EACCES) and to map them executable.
	NoExec bool
	// Suid mounts suid, without MS_NOSUID: set-user-ID and set-group-ID bits
	// and file capabilities of files on the view take effect when they are
	// executed. Only a daemon running as root can; fusermount3 mounts every
	// other user's view nosuid, and MountView refuses (ErrMountOption).
	Suid bool
	// Dev mounts dev, without MS_NODEV: device files on the view can be
	// opened. Only a daemon running as root can; fusermount3 mounts every
	// other user's view nodev, and MountView refuses (ErrMountOption).
	Dev bool
	// Atime is the atime flag of the mount; empty means AtimeDefault.
	Atime AtimeMode
	// NoDirAtime mounts nodiratime (MS_NODIRATIME). Like Atime, it is
	// recorded on the mount and does not change what the view shows.
	NoDirAtime bool
	// NoSymFollow mounts nosymfollow (MS_NOSYMFOLLOW): the kernel does not
	// follow symbolic links of the view when it resolves a path; they can
	// still be read with readlink.
	NoSymFollow bool
	// AllowOther lets users other than the mounting one use the mount. The
	// kernel then checks permissions (default_permissions) and files a
	// caller creates belong to that caller.
	AllowOther bool
	// DefaultPermissions makes the kernel check permission bits against the
	// presented attributes; always on with AllowOther.
	DefaultPermissions bool
	// FsName is the mount's source, shown in /proc/self/mountinfo and by df
	// and findmnt (libfuse's fsname=); empty means the lower directory.
	FsName string
	// Subtype makes the mount's filesystem type fuse.Subtype (libfuse's
	// subtype=); empty means "sievefs". Letters, digits and . _ - + only.
	Subtype string
	// MaxBacking bounds the backing files held for passthrough; past it, new
	// opens are served by the daemon. Zero means a default derived from
	// RLIMIT_NOFILE.
	MaxBacking int
	// MaxFDs is the daemon's descriptor budget, split between the inode
	// table, open directories and the descriptors held for callers' opens
	// (each user at most a quarter of those: past it, that user's opens
	// fail with EMFILE); see docs/operations.md, Descriptors. Zero means RLIMIT_NOFILE
	// (raised to its hard limit at mount).
	MaxFDs int
	// MaxInodeFDs bounds the O_PATH descriptors the inode table keeps open;
	// inodes past it are reopened by file handle when next used. Zero means
	// half of MaxFDs.
	MaxInodeFDs int
	// MaxStackDepth is the stacking depth negotiated with the kernel (1 or 2).
	// A lower tree that is itself stacked (overlayfs, another passthrough
	// FUSE mount) needs 2; a mount of depth 2 cannot be stacked upon.
	MaxStackDepth int
	// Rules are the filters that shape the view, in order (see package
	// filter); nil shows the lower tree as it is. A mount made with rules
	// (even an empty, non-nil slice) tracks the path of every node and can
	// change its rules later (Mount.SetRules); a mount made with nil cannot.
	// With AllowOther the kernel checks permissions against what the rules
	// present. MountView refuses rules that do not make a chain (ErrRules).
	Rules []filter.Rule
	// UnmountGrace is how long Unmount waits, after detaching a mount that
	// clients still use, before it aborts the FUSE connection; zero means
	// DefaultUnmountGrace.
	UnmountGrace time.Duration
	// Transport serves the FUSE connection; empty means TransportGoFuse.
	// TransportDev is experimental.
	Transport Transport
	// Logger receives the daemon's log; nil discards it.
	Logger *slog.Logger
	// Debug logs every operation at debug level.
	Debug bool
	// FuseDebug logs the FUSE wire protocol.
	FuseDebug bool
}

func (o *Options) setDefaults() {
	if o.Passthrough == "" {
		o.Passthrough = PassthroughAuto
	}
	if o.Cache == "" {
		o.Cache = CacheAuto
	}
	if o.AllowOther {
		o.DefaultPermissions = true
	}
	if o.MaxStackDepth <= 0 {
		o.MaxStackDepth = 1
	}
	if o.Transport == "" {
		o.Transport = TransportGoFuse
	}
	if o.UnmountGrace <= 0 {
		o.UnmountGrace = DefaultUnmountGrace
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}
