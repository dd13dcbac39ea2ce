package sievefs

import "github.com/sievefs/sievefs/filter"

// Status is a snapshot of what a mount is doing. Its JSON keys are stable.
type Status struct {
	Lower      string `json:"lower"`
	Mountpoint string `json:"mountpoint"`
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
	// Filters counts each rule's decisions, in rule order; empty without
	// a policy.
	Filters []filter.RuleStats `json:"filters"`
}

// PassthroughStatus says whether passthrough is in use and, if not, why.
type PassthroughStatus struct {
	Mode   PassthroughMode `json:"mode"`
	Active bool            `json:"active"`
	Reason string          `json:"reason,omitempty"`
	// MaxBacking is the budget of backing files.
	MaxBacking int `json:"max_backing"`
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
