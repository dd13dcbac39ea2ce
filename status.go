package sievefs

import (
	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/internal/lower"
)

// Status is a snapshot of what a mount is doing. Its JSON keys are stable.
type Status struct {
	Lower      string `json:"lower"`
	Mountpoint string `json:"mountpoint"`
	// LowerFS says what the lower filesystem is and how the inode table
	// reaches its inodes again.
	LowerFS LowerFS `json:"lower_fs"`
	// Passthrough says whether file data goes through the kernel.
	Passthrough PassthroughStatus `json:"passthrough"`
	// Cache says how long the kernel caches and whether the lower tree is
	// watched for changes made beside the mount.
	Cache CacheStatus `json:"cache"`
	// OpenFiles counts the files open now, by who serves their data.
	OpenFiles OpenFiles `json:"open_files"`
	// BackingFiles are the files the kernel holds for passthrough; they do
	// not appear in lsof.
	BackingFiles []BackingFile `json:"backing_files"`
	Counters     Counters      `json:"counters"`
	// Descriptors says how the daemon's descriptor budget is used.
	Descriptors Descriptors `json:"descriptors"`
	// Filters counts each rule's decisions, in rule order; empty without
	// a policy.
	Filters []filter.RuleStats `json:"filters"`
}

// LowerFS describes the lower filesystem (see docs/operations.md, Lowers
// on other machines).
type LowerFS struct {
	// Type is the filesystem's name when it is a network or FUSE one,
	// else its statfs magic number.
	Type string `json:"type"`
	// Remote is true for a network or FUSE filesystem: fanotify cannot see
	// changes made on other hosts (see CacheStatus.Remote).
	Remote bool `json:"remote"`
	// FileHandles is true when inodes whose descriptor was given back are
	// reopened by file handle; false when the filesystem has none and they
	// are reopened by path (their name in their parent, checked to be the
	// same inode).
	FileHandles bool `json:"file_handles"`
	// ReopensByPath counts inodes reopened by path; StaleHandles the
	// reopens by handle that failed with ESTALE (on a remote lower the
	// inode is then reopened by path).
	ReopensByPath uint64 `json:"reopens_by_path"`
	StaleHandles  uint64 `json:"stale_handles"`
}

// lowerFS reports the lower filesystem.
func lowerFS(t *lower.Tree) LowerFS {
	fsi, r := t.FS(), t.Reopens()
	return LowerFS{Type: fsi.Type, Remote: fsi.Remote, FileHandles: fsi.Handles,
		ReopensByPath: r.ByPath, StaleHandles: r.StaleHandles}
}

// PassthroughStatus says whether passthrough is in use and, if not, why.
type PassthroughStatus struct {
	Mode   PassthroughMode `json:"mode"`
	Active bool            `json:"active"`
	Reason string          `json:"reason,omitempty"`
	// MaxBacking is the budget of backing files.
	MaxBacking int `json:"max_backing"`
}

// Descriptors is the use of the daemon's descriptor budget (Options.MaxFDs;
// see docs/operations.md, Descriptors).
type Descriptors struct {
	Budget int `json:"budget"`
	// InodeMax bounds the inode table's descriptors (Counters.InodeFDs).
	InodeMax int `json:"inode_max"`
	// Dirs are the descriptors of open directories now, at most DirMax.
	Dirs   int `json:"dirs"`
	DirMax int `json:"dir_max"`
	// Held are the descriptors held for daemon-served opens and flocks,
	// by HeldUsers users: at most HeldMax, PerUserMax for one user.
	Held       int `json:"held"`
	HeldUsers  int `json:"held_users"`
	HeldMax    int `json:"held_max"`
	PerUserMax int `json:"per_user_max"`
	// Refused counts opens and flocks refused because a user's share or
	// the pool was used up; DirEvictions the directory descriptors closed
	// to make room (reopened when next read).
	Refused      uint64 `json:"refused"`
	DirEvictions uint64 `json:"dir_evictions"`
}

// OpenFiles counts open files.
type OpenFiles struct {
	Passthrough  int `json:"passthrough"`
	DaemonServed int `json:"daemon_served"`
}

// BackingFile is one backing file registered with the kernel.
type BackingFile struct {
	ID    int32  `json:"id"`
	Path  string `json:"path"`
	Opens int    `json:"opens"`
}

// Counters are running totals since the mount.
type Counters struct {
	Inodes            int    `json:"inodes"`
	InodeFDs          int    `json:"inode_fds"`
	BackingRegistered uint64 `json:"backing_registered"`
	BackingShared     uint64 `json:"backing_shared"`
	BackingOverBudget uint64 `json:"backing_over_budget"`
	BackingRefused    uint64 `json:"backing_refused"`
	DaemonServedOpens uint64 `json:"daemon_served_opens"`
	// DaemonReads and DaemonWrites count READ and WRITE requests: file
	// data the daemon served rather than the kernel's passthrough.
	DaemonReads  uint64 `json:"daemon_reads"`
	DaemonWrites uint64 `json:"daemon_writes"`
}

// Status returns a snapshot of the mount.
func (m *Mount) Status() Status {
	fs := m.fs
	st := Status{
		Lower:      m.Lower,
		Mountpoint: m.Mountpoint,
		LowerFS:    lowerFS(m.tree),
		Passthrough: PassthroughStatus{
			Mode:   m.opts.Passthrough,
			Active: fs.pt != nil,
			Reason: fs.ptReason,
		},
		Cache:        fs.cacheStatus(),
		BackingFiles: []BackingFile{},
	}
	fs.files.each(func(f *openFile) {
		if f.passthrough {
			st.OpenFiles.Passthrough++
		} else {
			st.OpenFiles.DaemonServed++
		}
	})
	st.Filters = fs.filters.Load().Stats()
	st.Counters.Inodes = m.tree.Len()
	st.Counters.InodeFDs = m.tree.OpenFDs()
	st.Counters.DaemonServedOpens = fs.daemonServed.Load()
	st.Descriptors = fs.descriptors()
	st.Counters.DaemonReads = fs.stats.requests[filter.OpRead].Load()
	st.Counters.DaemonWrites = fs.stats.requests[filter.OpWrite].Load()
	if fs.pt != nil {
		st.Passthrough.MaxBacking = fs.pt.Budget()
		for _, b := range fs.pt.List() {
			path := "?"
			if ino := m.tree.Get(b.Inode); ino != nil {
				path = m.tree.Path(ino)
			}
			st.BackingFiles = append(st.BackingFiles, BackingFile{ID: b.ID, Path: path, Opens: b.Opens})
		}
		c := fs.pt.Counters()
		st.Counters.BackingRegistered = c.Registered
		st.Counters.BackingShared = c.Shared
		st.Counters.BackingOverBudget = c.OverBudget
		st.Counters.BackingRefused = c.RegisterErrs
	}
	return st
}

// descriptors reports the use of the descriptor budget.
func (fs *fileSystem) descriptors() Descriptors {
	b := fs.budget
	held, users := fs.held.usage()
	return Descriptors{
		Budget: b.Total, InodeMax: b.Inodes, DirMax: b.Dirs, HeldMax: b.Held, PerUserMax: b.PerUser,
		Dirs: fs.dirFDs.held(), Held: held, HeldUsers: users,
		Refused: fs.held.refused.Load(), DirEvictions: fs.dirFDs.evicted.Load(),
	}
}
