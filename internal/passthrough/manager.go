// Package passthrough manages the backing files that the kernel's FUSE
// passthrough reads and writes directly.
//
// The kernel allows one backing file per FUSE inode, so the Manager keeps one
// backing ID per inode, shared by all of the inode's passthrough opens, and
// closes it (FUSE_DEV_IOC_BACKING_CLOSE) when the last of them is released.
// The kernel keeps a reference to each backing file that does not appear in
// the daemon's descriptor table (nor in lsof): List shows them.
package passthrough

import (
	"errors"
	"sort"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fuse"
)

// Registrar is the part of the FUSE server that registers backing files.
type Registrar interface {
	RegisterBackingFd(*fuse.BackingMap) (int32, syscall.Errno)
	UnregisterBackingFd(int32) syscall.Errno
}

// ErrBudget is returned by Acquire when the manager holds its budget of
// backing files; the caller serves the file itself.
var ErrBudget = errors.New("backing file budget exhausted")

// ErrDaemonServed is returned by Acquire while the inode has opens served by
// the daemon: the kernel keeps one I/O mode per inode (a shared mmap of a
// daemon-served file puts the inode in cached mode, which passthrough opens
// then cannot join), so an inode's opens are all passthrough or all
// daemon-served until the last of them is released.
var ErrDaemonServed = errors.New("inode is open in daemon-served mode")

// Backing is one backing file the kernel holds.
type Backing struct {
	ID    int32
	Inode uint64 // FUSE node ID
	Opens int    // passthrough opens sharing it
}

// Counters are the manager's running totals.
type Counters struct {
	Registered   uint64 // backing files registered
	Shared       uint64 // opens that reused a registered backing file
	OverBudget   uint64 // opens refused a backing file by the budget
	RegisterErrs uint64 // registrations the kernel refused
}

// Manager shares one backing ID per inode and bounds how many it holds.
//
// Its mutex is never held across a system call: Acquire reserves the
// inode's place (an entry whose ready channel is open), opens and registers
// the lower file without the lock, and commits; other opens of the inode
// meanwhile wait on ready, and every other inode's opens, releases and List
// go on.
type Manager struct {
	reg    Registrar
	budget int

	mu       sync.Mutex
	byInode  map[uint64]*entry
	served   map[uint64]int // daemon-served opens per inode
	counters Counters
}

// entry is an inode's backing file, or its place while it is registered.
type entry struct {
	Backing
	ready  chan struct{} // closed once registered (or given up: failed)
	failed bool
}

// registered reports whether e holds a backing ID now. Caller holds mu.
func (e *entry) registered() bool {
	select {
	case <-e.ready:
		return !e.failed
	default:
		return false
	}
}

// New returns a manager registering through reg and holding at most budget
// backing files (budget <= 0 means no limit).
func New(reg Registrar, budget int) *Manager {
	return &Manager{reg: reg, budget: budget, byInode: make(map[uint64]*entry), served: make(map[uint64]int)}
}

// Share counts one more open of the inode's backing file and returns its ID,
// or false when the inode has none. It waits for a registration under way.
func (m *Manager) Share(inode uint64) (int32, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for {
		e := m.byInode[inode]
		if e == nil {
			return 0, false
		}
		if e.registered() {
			e.Opens++
			m.counters.Shared++
			return e.ID, true
		}
		m.wait(e)
	}
}

// wait waits, without mu, until e's registration is done. Caller holds mu.
func (m *Manager) wait(e *entry) {
	m.mu.Unlock()
	<-e.ready
	m.mu.Lock()
}

// Acquire returns the inode's backing ID, registering open (a descriptor of
// the lower file, which Acquire closes) when the inode has none yet.
func (m *Manager) Acquire(inode uint64, open func() (int, error)) (int32, error) {
	m.mu.Lock()
	for {
		e := m.byInode[inode]
		if e == nil {
			break
		}
		if e.registered() {
			e.Opens++
			m.counters.Shared++
			m.mu.Unlock()
			return e.ID, nil
		}
		m.wait(e)
	}
	if m.served[inode] > 0 {
		m.mu.Unlock()
		return 0, ErrDaemonServed
	}
	if m.budget > 0 && len(m.byInode) >= m.budget {
		m.counters.OverBudget++
		m.mu.Unlock()
		return 0, ErrBudget
	}
	e := &entry{Backing: Backing{Inode: inode}, ready: make(chan struct{})}
	m.byInode[inode] = e
	m.mu.Unlock()

	id, err := m.register(open)

	m.mu.Lock()
	defer m.mu.Unlock()
	defer close(e.ready)
	if err != nil {
		e.failed = true
		delete(m.byInode, inode)
		return 0, err
	}
	e.ID, e.Opens = id, 1
	m.counters.Registered++
	return id, nil
}

// register opens the lower file and registers it, without mu.
func (m *Manager) register(open func() (int, error)) (int32, error) {
	fd, err := open()
	if err != nil {
		return 0, err
	}
	id, errno := m.reg.RegisterBackingFd(&fuse.BackingMap{Fd: int32(fd)})
	syscall.Close(fd)
	if errno != 0 {
		m.mu.Lock()
		m.counters.RegisterErrs++
		m.mu.Unlock()
		return 0, errno
	}
	return id, nil
}

// Release ends one passthrough open of the inode and closes the backing ID
// with the last one; the ioctl runs without the lock.
func (m *Manager) Release(inode uint64) error {
	m.mu.Lock()
	e := m.byInode[inode]
	if e == nil || !e.registered() {
		m.mu.Unlock()
		return nil
	}
	e.Opens--
	if e.Opens > 0 {
		m.mu.Unlock()
		return nil
	}
	delete(m.byInode, inode)
	m.mu.Unlock()
	if errno := m.reg.UnregisterBackingFd(e.ID); errno != 0 {
		return errno
	}
	return nil
}

// ServeByDaemon records an open of the inode served by the daemon. It
// returns false, recording nothing, when the inode has a backing file (or
// one is being registered): the open must then share it.
func (m *Manager) ServeByDaemon(inode uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.byInode[inode] != nil {
		return false
	}
	m.served[inode]++
	return true
}

// ReleaseDaemon ends a daemon-served open recorded by ServeByDaemon.
func (m *Manager) ReleaseDaemon(inode uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.served[inode]--; m.served[inode] <= 0 {
		delete(m.served, inode)
	}
}

// Active reports whether the inode has a backing file now.
func (m *Manager) Active(inode uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.byInode[inode]
	return e != nil && e.registered()
}

// List returns the backing files held, by ID.
func (m *Manager) List() []Backing {
	m.mu.Lock()
	out := make([]Backing, 0, len(m.byInode))
	for _, e := range m.byInode {
		if e.registered() {
			out = append(out, e.Backing)
		}
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Counters returns the running totals.
func (m *Manager) Counters() Counters {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counters
}

// Budget returns the most backing files the manager holds (0: no limit).
func (m *Manager) Budget() int { return m.budget }
