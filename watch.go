package sievefs

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs/internal/lower"
)

// watchTimeout is how long the kernel may cache entries and attributes of a
// lower tree the daemon watches for changes made beside the mount (see
// CacheWatch): what changes is dropped from the kernel's caches when it
// changes, so the timeout only bounds the damage of a change never seen.
const watchTimeout = time.Hour

// CacheStatus says how long the kernel trusts what it caches and whether the
// daemon watches the lower tree to drop what changes underneath.
type CacheStatus struct {
	Mode CacheMode `json:"mode"`
	// Watch is true while changes made beside the mount are watched
	// (fanotify) and the kernel caches for an hour.
	Watch bool `json:"watch"`
	// Reason says why the lower tree is not watched, when it is not.
	Reason string `json:"reason,omitempty"`
	// TimeoutSeconds is how long the kernel caches entries and attributes.
	TimeoutSeconds float64 `json:"timeout_seconds"`
	// Remote is true when the lower tree is a network or FUSE filesystem
	// (LowerFS.Remote): changes made on other hosts show only once a
	// timeout runs out, and never in mode always.
	Remote bool `json:"remote"`
}

// ttl is how long the kernel may cache an entry or the attributes of ino.
// The root keeps the short timeout: a stat of the mountpoint then tells
// within a second that the daemon is gone (ENOTCONN).
func (fs *fileSystem) ttl(ino *lower.Inode) time.Duration {
	if fs.ptWriters.writing(ino.ID) {
		return 0 // see ptWriters
	}
	if ino.ID != lower.RootID && fs.watching.Load() && fs.tree.Watched(ino) {
		return watchTimeout
	}
	return fs.timeout
}

// watch starts watching the lower tree for changes made beside the mount,
// in cache mode watch, before the mount serves (so that every inode the
// kernel is told of is watched). Once mounted, startCaching lets replies use
// watchTimeout.
func (fs *fileSystem) watch() {
	reason := ""
	switch {
	case fs.opts.Cache != CacheWatch:
		reason = "only in cache mode watch"
	case fs.tree.FS().Remote:
		reason = "the lower is a network or FUSE filesystem (" + fs.tree.FS().Type +
			"): fanotify cannot see changes made on other hosts, so the kernel caches for the short timeout"
	case !hasCapSysAdmin():
		reason = "the daemon lacks CAP_SYS_ADMIN, which fanotify requires"
	default:
		if err := fs.tree.Watch(fs.changed); err != nil {
			reason = err.Error()
		}
	}
	if reason != "" {
		fs.watchReason.Store(&reason)
	}
}

// startCaching lets replies use watchTimeout, once the mount is up and if
// the lower tree is watched.
func (fs *fileSystem) startCaching() {
	if fs.watchReason.Load() == nil {
		fs.watching.Store(true)
	}
}

// cacheStatus reports the cache mode and the watch.
func (fs *fileSystem) cacheStatus() CacheStatus {
	s := CacheStatus{Mode: fs.opts.Cache, Watch: fs.watching.Load(), TimeoutSeconds: fs.timeout.Seconds(),
		Remote: fs.tree.FS().Remote}
	if s.Watch {
		s.TimeoutSeconds = watchTimeout.Seconds()
	}
	if r := fs.watchReason.Load(); r != nil {
		s.Reason = *r
	}
	return s
}

// changed drops from the kernel's caches what changed in the lower tree
// beside the mount: the changed names (and the listings and attributes of
// their directories), and the attributes, and page cache when the content
// changed, of changed inodes.
func (fs *fileSystem) changed(changes []lower.Change, lost bool) {
	if !fs.watching.Load() {
		return // not mounted yet: replies so far told the kernel fs.timeout
	}
	if lost {
		fs.watching.Store(false)
		reason := "events were lost: the kernel caches for the short timeout since"
		fs.watchReason.Store(&reason)
		fs.log.Warn("lower tree no longer watched: events were lost; the kernel now caches for the short timeout", "timeout", fs.timeout)
		fs.invalidateAll()
		return
	}
	chain := fs.filters.Load()
	dirs := make(map[*lower.Inode]bool)
	for _, c := range changes {
		switch c.Kind {
		case lower.EntryChanged:
			dirs[c.Dir] = true
			name := c.Name
			if chain != nil && chain.MapsNames() {
				dir, ok := fs.tree.ViewPath(c.Dir)
				if !ok {
					continue
				}
				if name, ok = chain.ViewName(dir, name); !ok {
					continue
				}
			}
			fs.conn.EntryNotify(c.Dir.ID, name)
		default:
			off := int64(-1) // attributes only
			if c.Kind == lower.DataChanged || c.Ino.Type == unix.S_IFDIR {
				off = 0 // and cached pages: file data, a directory's listing
			}
			fs.conn.InodeNotify(c.Ino.ID, off, 0)
			if c.Ino.Type == unix.S_IFREG && chain != nil {
				for mask := 1; mask < 1<<chain.DataRules(); mask++ {
					fs.conn.InodeNotify(nodeID(c.Ino, uint8(mask)), off, 0)
				}
			}
		}
	}
	for d := range dirs {
		fs.conn.InodeNotify(d.ID, 0, 0)
	}
}
