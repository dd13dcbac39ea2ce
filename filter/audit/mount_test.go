package audit_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/filter/audit"
	"github.com/sievefs/sievefs/filter/readonly"
	"github.com/sievefs/sievefs/internal/fusetest"
)

// auditLine is one line of an audit log.
type auditLine struct {
	Time       string  `json:"time"`
	Op         string  `json:"op"`
	Path       *string `json:"path"`
	PathB64    *string `json:"path_b64"`
	NewPath    *string `json:"new_path"`
	NewPathB64 *string `json:"new_path_b64"`
	Access     string  `json:"access"`
	Flags      string  `json:"flags"`
	Uid        uint32  `json:"uid"`
	Gid        uint32  `json:"gid"`
	Pid        uint32  `json:"pid"`
	Errno      int     `json:"errno"`
	Error      string  `json:"error"`
}

// name returns the bytes of a path written under key or key_b64.
func (l *auditLine) name(t testing.TB, plain, b64 *string) string {
	t.Helper()
	switch {
	case plain != nil && b64 != nil:
		t.Errorf("line %+v has both a name and its base64", l)
	case plain != nil:
		return *plain
	case b64 != nil:
		b, err := base64.StdEncoding.DecodeString(*b64)
		if err != nil {
			t.Errorf("line %+v: bad base64: %v", l, err)
		}
		return string(b)
	}
	return ""
}

// key is what the tests compare of a line: op, paths and errno.
func (l *auditLine) key(t testing.TB) string {
	s := l.Op + " " + fmt.Sprintf("%q", l.name(t, l.Path, l.PathB64))
	if l.NewPath != nil || l.NewPathB64 != nil {
		s += fmt.Sprintf(" -> %q", l.name(t, l.NewPath, l.NewPathB64))
	}
	if l.Errno != 0 {
		s += " " + l.Error
	}
	return s
}

// readAudit decodes every line of the log at path.
func readAudit(t testing.TB, path string) []auditLine {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []auditLine
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		var l auditLine
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

// TestFilterAudit checks the log lines of open, create, setattr, rename and
// unlink (path, new path, caller's uid, gid and thread id, errno), a name
// that is not UTF-8, and that the data of an audited file keeps
// passthrough.
func TestFilterAudit(t *testing.T) {
	low := fusetest.NewLower(t)
	fusetest.LayTree(t, low, "aud/f", "aud/ro/f", "other/f")
	for _, name := range []string{"aud", "aud/f", "aud/ro", "aud/ro/f", "other", "other/f"} {
		if err := os.Chown(filepath.Join(low, name), 1000, 1000); err != nil {
			t.Fatal(err)
		}
	}
	big := fusetest.RandomBytes(t, 1<<20)
	fusetest.WriteFile(t, filepath.Join(low, "aud/big"), big)
	logPath := filepath.Join(t.TempDir(), "audit.jsonl")
	au, err := audit.New(audit.Config{
		Ops:   []filter.Op{filter.OpOpen, filter.OpCreate, filter.OpUnlink, filter.OpRename, filter.OpSetattr},
		Paths: fusetest.Globs("aud/**"),
		Log:   logPath,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { au.Close() }) // after the unmount, registered below
	chain := fusetest.RulesOf(t,
		filter.Rule{Name: "audit", Filter: au},
		filter.Rule{Filter: readonly.New(fusetest.Globs("aud/ro/**"))},
	)
	v := fusetest.MountFiltered(t, low, chain, true)
	p := v.Path
	bad := "aud/bad\xff\xfe name"

	// Operations by uid 1000 on its own thread, whose id is the pid the
	// kernel reports.
	var errs []error
	tid := fusetest.AsCaller(t, 1000, 1000, func() {
		do := func(err error) { errs = append(errs, err) }
		_, err := os.ReadFile(p("aud/f"))
		do(err)
		do(os.WriteFile(p("aud/new"), []byte("new"), 0o644))
		do(os.Chmod(p("aud/new"), 0o600))
		do(os.Rename(p("aud/new"), p("aud/new2")))
		do(os.Remove(p("aud/new2")))
		_, err = os.OpenFile(p("aud/ro/f"), os.O_WRONLY, 0)
		do(err)
		do(os.WriteFile(p(bad), []byte("bad"), 0o644))
		do(os.Rename(p(bad), p("aud/good")))
		do(os.Rename(p("aud/good"), p(bad)))
		_, err = os.ReadFile(p("other/f")) // not audited
		do(err)
	})
	for i, err := range errs {
		if i == 5 {
			fusetest.WantErr(t, "open aud/ro/f for writing", err, syscall.EROFS)
		} else if err != nil {
			t.Errorf("operation %d as uid 1000: %v", i, err)
		}
	}
	// And one by root, from another thread.
	rootTid := fusetest.AsCaller(t, 0, 0, func() {
		if err := os.Chmod(p("aud/f"), 0o640); err != nil {
			t.Errorf("root chmod aud/f: %v", err)
		}
	})

	lines := readAudit(t, logPath)
	want := []string{
		`open "aud/f"`,
		`create "aud/new"`,
		`setattr "aud/new"`,
		`rename "aud/new" -> "aud/new2"`,
		`unlink "aud/new2"`,
		`open "aud/ro/f" EROFS`,
		fmt.Sprintf(`create %q`, bad),
		fmt.Sprintf(`rename %q -> "aud/good"`, bad),
		fmt.Sprintf(`rename "aud/good" -> %q`, bad),
		`setattr "aud/f"`,
	}
	var got []string
	for _, l := range lines {
		got = append(got, l.key(t))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("audit log:\n  %q\nwant\n  %q", got, want)
	}
	for i, l := range lines {
		wantUid, wantPid := uint32(1000), uint32(tid)
		if i == len(lines)-1 {
			wantUid, wantPid = 0, uint32(rootTid)
		}
		if l.Uid != wantUid || l.Gid != wantUid || l.Pid != wantPid {
			t.Errorf("line %d (%s): uid %d gid %d pid %d, want %d %d %d", i, l.key(t), l.Uid, l.Gid, l.Pid, wantUid, wantUid, wantPid)
		}
		if ts, err := time.Parse(time.RFC3339Nano, l.Time); err != nil || time.Since(ts) > time.Minute || time.Since(ts) < 0 {
			t.Errorf("line %d: time %q: %v", i, l.Time, err)
		}
		if (l.Errno == 0) != (l.Error == "") {
			t.Errorf("line %d: errno %d with error %q", i, l.Errno, l.Error)
		}
	}
	for _, l := range lines {
		if l.Op == "open" && l.Errno != 0 && l.Errno != int(syscall.EROFS) {
			t.Errorf("open recorded with errno %d, want %d", l.Errno, syscall.EROFS)
		}
		if l.PathB64 != nil && *l.PathB64 != base64.StdEncoding.EncodeToString([]byte(bad)) {
			t.Errorf("path_b64 %q, want the base64 of %q", *l.PathB64, bad)
		}
	}

	// The name with invalid UTF-8 round-trips: in the lower tree and in
	// the listing.
	if b, err := os.ReadFile(filepath.Join(low, bad)); err != nil || string(b) != "bad" {
		t.Errorf("lower %q: %q %v", bad, b, err)
	}
	if !fusetest.HasName(fusetest.ListDir(t, p("aud")), filepath.Base(bad)) {
		t.Errorf("listing of aud lacks %q", filepath.Base(bad))
	}

	// Reads and writes of an audited file keep passthrough.
	if v.Mount.Status().Passthrough.Active {
		tr := fusetest.NewFuseTrace(t, v.Mnt)
		if tr != nil {
			tr.Reset(t)
		}
		r0, w0 := fusetest.DaemonIO(v)
		f, err := os.OpenFile(p("aud/big"), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(big))
		if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, big) {
			t.Errorf("read aud/big: %v, equal %v", err, bytes.Equal(got, big))
		}
		if _, err := f.WriteAt([]byte("patch"), 4096); err != nil {
			t.Error(err)
		}
		f.Close()
		if r1, w1 := fusetest.DaemonIO(v); r1 != r0 || w1 != w0 {
			t.Errorf("audited file's data reached the daemon: reads %d -> %d, writes %d -> %d", r0, r1, w0, w1)
		}
		if tr != nil {
			if c := tr.Counts(t); c[fusetest.OpOpen] == 0 || c[fusetest.OpRead] != 0 || c[fusetest.OpWrite] != 0 {
				t.Errorf("FUSE requests %v: want an OPEN and no READ or WRITE", c)
			}
		}
		if n := len(readAudit(t, logPath)); n != len(lines)+1 {
			t.Errorf("%d new audit lines for one open of aud/big, want 1", n-len(lines))
		}
	}
	if au.Errors() != 0 {
		t.Errorf("audit filter counted %d write errors", au.Errors())
	}
}
