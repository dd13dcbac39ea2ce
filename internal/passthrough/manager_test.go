package passthrough

import (
	"errors"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// fakeRegistrar hands out backing IDs without a kernel. Registration of
// the descriptors in block waits until block's channel is closed; fail
// makes the next registrations fail with that errno.
type fakeRegistrar struct {
	mu       sync.Mutex
	next     int32
	live     map[int32]bool
	fail     syscall.Errno
	started  chan struct{} // receives one value when a registration starts
	release  chan struct{} // a registration waits on it when not nil
	unregErr syscall.Errno
}

func newFake() *fakeRegistrar { return &fakeRegistrar{next: 1, live: map[int32]bool{}} }

func (f *fakeRegistrar) RegisterBackingFd(m *fuse.BackingMap) (int32, syscall.Errno) {
	if f.started != nil {
		f.started <- struct{}{}
	}
	if f.release != nil {
		<-f.release
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != 0 {
		return 0, f.fail
	}
	id := f.next
	f.next++
	f.live[id] = true
	return id, 0
}

func (f *fakeRegistrar) UnregisterBackingFd(id int32) syscall.Errno {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.live[id] {
		return syscall.EBADF
	}
	delete(f.live, id)
	return f.unregErr
}

// openNull stands for opening a lower file.
func openNull() (int, error) { return unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0) }

// TestManager runs sequences of opens and releases against the manager's
// rules: one backing ID per inode shared by its opens and closed with the
// last, the budget, daemon-served inodes, and kernel refusals.
func TestManager(t *testing.T) {
	type step struct {
		op      string // acquire, release, daemon, undaemon, share
		inode   uint64
		wantID  int32
		wantErr error
	}
	for _, tc := range []struct {
		name     string
		budget   int
		fail     syscall.Errno
		steps    []step
		live     int
		counters Counters
	}{
		{name: "shared by opens, closed with the last", steps: []step{
			{op: "acquire", inode: 7, wantID: 1},
			{op: "acquire", inode: 7, wantID: 1},
			{op: "share", inode: 7, wantID: 1},
			{op: "release", inode: 7}, {op: "release", inode: 7}, {op: "release", inode: 7},
			{op: "acquire", inode: 7, wantID: 2},
		}, live: 1, counters: Counters{Registered: 2, Shared: 2}},
		{name: "budget", budget: 2, steps: []step{
			{op: "acquire", inode: 1, wantID: 1},
			{op: "acquire", inode: 2, wantID: 2},
			{op: "acquire", inode: 3, wantErr: ErrBudget},
			{op: "acquire", inode: 1, wantID: 1}, // sharing needs no room
			{op: "release", inode: 2},
			{op: "acquire", inode: 3, wantID: 3},
		}, live: 2, counters: Counters{Registered: 3, Shared: 1, OverBudget: 1}},
		{name: "daemon-served inode", steps: []step{
			{op: "daemon", inode: 5},
			{op: "acquire", inode: 5, wantErr: ErrDaemonServed},
			{op: "undaemon", inode: 5},
			{op: "acquire", inode: 5, wantID: 1},
			{op: "daemon", inode: 5, wantErr: errShares},
		}, live: 1, counters: Counters{Registered: 1}},
		{name: "kernel refuses", fail: syscall.EPERM, steps: []step{
			{op: "acquire", inode: 9, wantErr: syscall.EPERM},
			{op: "share", inode: 9, wantErr: errNone},
		}, counters: Counters{RegisterErrs: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reg := newFake()
			reg.fail = tc.fail
			m := New(reg, tc.budget)
			for i, st := range tc.steps {
				var id int32
				var err error
				switch st.op {
				case "acquire":
					id, err = m.Acquire(st.inode, openNull)
				case "share":
					var ok bool
					if id, ok = m.Share(st.inode); !ok {
						err = errNone
					}
				case "release":
					err = m.Release(st.inode)
				case "daemon":
					if !m.ServeByDaemon(st.inode) {
						err = errShares
					}
				case "undaemon":
					m.ReleaseDaemon(st.inode)
				}
				if !errors.Is(err, st.wantErr) || (st.wantErr == nil && id != st.wantID) {
					t.Errorf("step %d %s %d: id %d err %v, want id %d err %v", i, st.op, st.inode, id, err, st.wantID, st.wantErr)
				}
			}
			if got := len(reg.live); got != tc.live {
				t.Errorf("%d backing files registered at the end, want %d", got, tc.live)
			}
			if got := len(m.List()); got != tc.live {
				t.Errorf("List has %d backing files, want %d", got, tc.live)
			}
			if got := m.Counters(); got != tc.counters {
				t.Errorf("counters %+v, want %+v", got, tc.counters)
			}
		})
	}
}

var (
	errNone   = errors.New("no backing file")
	errShares = errors.New("must share the backing file")
)

// TestManagerRegistersOutsideLock checks that a registration the kernel is
// slow to answer holds up only the opens of its own inode: another inode's
// open, List and a release go on meanwhile, and a second open of the same
// inode waits and then shares the backing file.
func TestManagerRegistersOutsideLock(t *testing.T) {
	reg := newFake()
	m := New(reg, 0)
	if _, err := m.Acquire(2, openNull); err != nil {
		t.Fatal(err)
	}
	reg.started, reg.release = make(chan struct{}, 4), make(chan struct{})
	first := make(chan int32)
	go func() {
		id, err := m.Acquire(1, openNull)
		if err != nil {
			t.Error(err)
		}
		first <- id
	}()
	<-reg.started // the registration of inode 1 is under way
	second := make(chan int32)
	go func() {
		id, _ := m.Share(1)
		second <- id
	}()
	// Not held up: another inode's release and the list. (A manager that
	// held its lock across the registration would wait here until the
	// deadline, which only bounds a hang.)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := m.Release(2); err != nil {
			t.Errorf("release of another inode: %v", err)
		}
		if l := m.List(); len(l) != 0 {
			t.Errorf("List during the registration: %v, want nothing registered", l)
		}
		if m.ServeByDaemon(1) {
			t.Error("a daemon-served open was recorded while a backing file is being registered")
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("another inode's release waited for a registration")
	}
	close(reg.release)
	id1, id2 := <-first, <-second
	if id1 == 0 || id2 != id1 {
		t.Errorf("ids %d and %d, want one shared backing file", id1, id2)
	}
	if l := m.List(); len(l) != 1 || l[0].Opens != 2 {
		t.Errorf("List %+v, want inode 1 with 2 opens", l)
	}
}
