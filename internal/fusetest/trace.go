package fusetest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// FuseTrace counts the requests the kernel sends to one FUSE mount, with
// the fuse:fuse_request_send tracepoint in a private tracefs instance.
type FuseTrace struct {
	inst string
}

// FUSE opcodes, from include/uapi/linux/fuse.h, as FuseTrace.Counts
// counts them.
const (
	OpOpen  = 14
	OpRead  = 15
	OpWrite = 16
)

// NewFuseTrace starts counting the requests sent to the mount on mnt. It
// returns nil, after logging why, when tracing is unavailable. Cleanup
// removes the instance and unmounts tracefs.
func NewFuseTrace(t *testing.T, mnt string) *FuseTrace {
	t.Helper()
	// Not t.TempDir: its removal must never walk into a tracefs that is
	// still mounted.
	dir, err := os.MkdirTemp("", "sievefs-tracefs-")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("nodev", dir, "tracefs", 0, ""); err != nil {
		os.Remove(dir)
		t.Logf("no tracepoint check: mount tracefs: %v", err)
		return nil
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount tracefs %s: %v", dir, err)
			return
		}
		os.Remove(dir)
	})
	if _, err := os.Stat(filepath.Join(dir, "events/fuse/fuse_request_send/format")); err != nil {
		t.Logf("no tracepoint check: %v", err)
		return nil
	}
	inst := filepath.Join(dir, "instances", fmt.Sprintf("sievefs-test-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(inst, 0o755); err != nil {
		t.Logf("no tracepoint check: tracefs instance: %v", err)
		return nil
	}
	t.Cleanup(func() {
		os.WriteFile(filepath.Join(inst, "events/fuse/fuse_request_send/enable"), []byte("0"), 0)
		if err := os.Remove(inst); err != nil {
			t.Errorf("remove tracefs instance: %v", err)
		}
	})
	var st unix.Stat_t
	if err := unix.Stat(mnt, &st); err != nil {
		t.Fatal(err)
	}
	// The event records the kernel's dev_t of the connection, MKDEV(major, minor).
	conn := uint64(unix.Major(st.Dev))<<20 | uint64(unix.Minor(st.Dev))
	ev := filepath.Join(inst, "events/fuse/fuse_request_send")
	for _, w := range []struct{ file, val string }{
		{"filter", fmt.Sprintf("connection == %d", conn)},
		{"enable", "1"},
	} {
		if err := os.WriteFile(filepath.Join(ev, w.file), []byte(w.val), 0); err != nil {
			t.Logf("no tracepoint check: write %s: %v", w.file, err)
			return nil
		}
	}
	return &FuseTrace{inst: inst}
}

// Reset forgets the requests counted so far.
func (tr *FuseTrace) Reset(t testing.TB) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(tr.inst, "trace"), nil, 0); err != nil {
		t.Fatal(err)
	}
}

var opcodeRE = regexp.MustCompile(`fuse_request_send: .* opcode (\d+) `)

// Counts returns the requests sent since the last Reset, by opcode.
func (tr *FuseTrace) Counts(t testing.TB) map[int]int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(tr.inst, "trace"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int{}
	for _, line := range strings.Split(string(data), "\n") {
		if m := opcodeRE.FindStringSubmatch(line); m != nil {
			op, _ := strconv.Atoi(m[1])
			out[op]++
		}
	}
	return out
}
