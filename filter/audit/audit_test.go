package audit

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs/filter"
)

// openLogs returns how many logs the process has open.
func openLogs() int {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	return len(registry.files)
}

// newFilter makes a filter logging to a new file and closes it at the end.
func newFilter(t testing.TB, c Config) (*Filter, string) {
	t.Helper()
	if c.Log == "" {
		c.Log = filepath.Join(t.TempDir(), "audit.jsonl")
	}
	f, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, c.Log
}

// readLines decodes every line of the log, failing on any line that is not
// one whole JSON object.
func readLines(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Fatalf("log does not end with a newline: %q", data)
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("line %d %q: %v", len(out)+1, sc.Text(), err)
		}
		if dec.More() {
			t.Fatalf("line %d %q: more than one value", len(out)+1, sc.Text())
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// name returns the bytes of the name under key or key_b64, failing when
// the line has both or neither.
func name(t *testing.T, m map[string]any, key string) string {
	t.Helper()
	s, plain := m[key].(string)
	b64, encoded := m[key+"_b64"].(string)
	switch {
	case plain && encoded:
		t.Fatalf("line has both %s and %s_b64: %v", key, key, m)
	case plain:
		if !utf8.ValidString(s) {
			t.Fatalf("%s %q is not valid UTF-8", key, s)
		}
		return s
	case encoded:
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatalf("%s_b64 %q: %v", key, b64, err)
		}
		if utf8.Valid(raw) {
			t.Fatalf("%s_b64 used for valid UTF-8 %q", key, raw)
		}
		return string(raw)
	}
	t.Fatalf("line has neither %s nor %s_b64: %v", key, key, m)
	return ""
}

func num(t *testing.T, m map[string]any, key string) int64 {
	t.Helper()
	n, ok := m[key].(json.Number)
	if !ok {
		t.Fatalf("%s: %v (%T), want a number", key, m[key], m[key])
	}
	v, err := n.Int64()
	if err != nil {
		t.Fatalf("%s: %v", key, err)
	}
	return v
}

func keys(m map[string]any) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, ",")
}

var caller = filter.Caller{Uid: 1000, Gid: 100, Pid: 4242}

// TestOpenFlags checks that a line of open, create and tmpfile tells a
// read open from a write open, and names the flags as strace does.
func TestOpenFlags(t *testing.T) {
	f, log := newFilter(t, Config{})
	for _, c := range []struct {
		op            filter.Op
		flags         int
		access, names string
	}{
		{filter.OpOpen, syscall.O_RDONLY, "read", "O_RDONLY"},
		{filter.OpOpen, syscall.O_WRONLY | syscall.O_TRUNC | syscall.O_APPEND, "write", "O_WRONLY|O_TRUNC|O_APPEND"},
		{filter.OpCreate, syscall.O_RDWR | syscall.O_CREAT | syscall.O_EXCL | syscall.O_CLOEXEC, "read-write", "O_RDWR|O_CREAT|O_EXCL|O_CLOEXEC"},
		{filter.OpOpen, syscall.O_RDONLY | syscall.O_SYNC | syscall.O_NOFOLLOW, "read", "O_RDONLY|O_DSYNC|O_NOFOLLOW|O_SYNC"},
		{filter.OpTmpfile, syscall.O_RDWR | 0x20 | 0x40000000, "read-write", "O_RDWR|FMODE_EXEC|0x40000000"},
	} {
		r := filter.Request{Op: c.op, Caller: caller, Path: "f", Flags: c.flags}
		f.Post(&r, nil)
		lines := readLines(t, log)
		m := lines[len(lines)-1]
		if m["access"] != c.access || m["flags"] != c.names {
			t.Errorf("%s with flags %#x: access %v, flags %v; want %s, %s", c.op, c.flags, m["access"], m["flags"], c.access, c.names)
		}
	}
	if d := f.Decisions(); d[filter.DecisionRecord] != 5 || d[filter.DecisionRecordFailed] != 0 {
		t.Errorf("decisions %v, want 5 lines recorded", d)
	}
}

func TestLines(t *testing.T) {
	f, log := newFilter(t, Config{})
	if f.Kind() != "audit" {
		t.Errorf("Kind() = %q", f.Kind())
	}
	before := time.Now()
	other := errors.New("not an errno")
	posts := []struct {
		r   filter.Request
		err error
	}{
		{filter.Request{Op: filter.OpOpen, Caller: caller, Path: "a/b.txt"}, nil},
		{filter.Request{Op: filter.OpLookup, Caller: caller, Path: "missing"}, syscall.ENOENT},
		{filter.Request{Op: filter.OpRename, Caller: caller, Path: "x", NewPath: "dir/y"}, nil},
		{filter.Request{Op: filter.OpLink, Caller: caller, Path: "x", NewPath: "z"}, syscall.EXDEV},
		{filter.Request{Op: filter.OpGetattr, Caller: filter.Caller{}, Path: ""}, nil},
		{filter.Request{Op: filter.OpUnlink, Caller: caller, Path: "w"}, other},
		{filter.Request{Op: filter.OpSetattr, Caller: caller, Path: "w"}, syscall.Errno(4000)},
	}
	for _, p := range posts {
		r := p.r
		if got := f.Post(&r, p.err); got != p.err {
			t.Errorf("Post(%v, %v) = %v, want the error unchanged", r.Op, p.err, got)
		}
	}
	after := time.Now()
	lines := readLines(t, log)
	if len(lines) != len(posts) {
		t.Fatalf("%d lines, want %d", len(lines), len(posts))
	}
	want := []struct {
		keys   string
		errno  int64
		errStr string
	}{
		{"access,errno,flags,gid,op,path,pid,time,uid", 0, ""},
		{"errno,error,gid,op,path,pid,time,uid", 2, "ENOENT"},
		{"errno,gid,new_path,op,path,pid,time,uid", 0, ""},
		{"errno,error,gid,new_path,op,path,pid,time,uid", int64(syscall.EXDEV), "EXDEV"},
		{"errno,gid,op,path,pid,time,uid", 0, ""},
		{"errno,error,gid,op,path,pid,time,uid", int64(syscall.EIO), "EIO"},
		{"errno,error,gid,op,path,pid,time,uid", 4000, "E4000"},
	}
	for i, m := range lines {
		p, w := posts[i], want[i]
		if got := keys(m); got != w.keys {
			t.Errorf("line %d keys %s, want %s", i+1, got, w.keys)
		}
		if m["op"] != p.r.Op.String() {
			t.Errorf("line %d op %v, want %s", i+1, m["op"], p.r.Op)
		}
		if got := name(t, m, "path"); got != p.r.Path {
			t.Errorf("line %d path %q, want %q", i+1, got, p.r.Path)
		}
		if _, ok := m["new_path"]; ok && m["new_path"] != p.r.NewPath {
			t.Errorf("line %d new_path %v, want %q", i+1, m["new_path"], p.r.NewPath)
		}
		if num(t, m, "uid") != int64(p.r.Caller.Uid) || num(t, m, "gid") != int64(p.r.Caller.Gid) || num(t, m, "pid") != int64(p.r.Caller.Pid) {
			t.Errorf("line %d caller %v %v %v, want %+v", i+1, m["uid"], m["gid"], m["pid"], p.r.Caller)
		}
		if got := num(t, m, "errno"); got != w.errno {
			t.Errorf("line %d errno %d, want %d", i+1, got, w.errno)
		}
		if w.errStr != "" && m["error"] != w.errStr {
			t.Errorf("line %d error %v, want %s", i+1, m["error"], w.errStr)
		}
		ts, _ := m["time"].(string)
		tm, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			t.Errorf("line %d time %q: %v", i+1, ts, err)
			continue
		}
		if !strings.HasSuffix(ts, "Z") || len(ts) != len("2006-01-02T15:04:05.000000000Z") {
			t.Errorf("line %d time %q: want UTC with nine fractional digits", i+1, ts)
		}
		if tm.Before(before.Truncate(time.Microsecond)) || tm.After(after) {
			t.Errorf("line %d time %v not within [%v, %v]", i+1, tm, before, after)
		}
	}
	if f.Errors() != 0 {
		t.Errorf("Errors() = %d", f.Errors())
	}
}

func TestFileMode(t *testing.T) {
	_, log := newFilter(t, Config{})
	fi, err := os.Stat(log)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&^0o600 != 0 {
		t.Errorf("log mode %v, want at most 0600", fi.Mode())
	}
}

// nameCases are names that JSON cannot hold as they are, or must escape.
var nameCases = []string{
	"plain",
	"",
	"with space/and\ttab",
	"quote\"inside",
	`back\slash`,
	"new\nline\rcr",
	"\x00nul\x01\x02\x1f",
	"del\x7f",
	"<html>&amp;",
	"línea/日本語/🙂",
	"line\u2028sep\u2029para",
	"\xff",
	"bad\xfe\xffutf8",
	"truncated\xe6\x97",
	"surrogate\xed\xa0\x80",
	"overlong\xc0\xaf",
	"dir\xff/\"quoted\"\n",
	"\ufffd literal replacement char",
}

func TestNamesRoundTrip(t *testing.T) {
	f, log := newFilter(t, Config{})
	for _, n := range nameCases {
		r := filter.Request{Op: filter.OpRename, Caller: caller, Path: n, NewPath: "to/" + n}
		f.Post(&r, nil)
	}
	lines := readLines(t, log)
	if len(lines) != len(nameCases) {
		t.Fatalf("%d lines, want %d", len(lines), len(nameCases))
	}
	for i, m := range lines {
		want := nameCases[i]
		if got := name(t, m, "path"); got != want {
			t.Errorf("path %q, want %q", got, want)
		}
		if got := name(t, m, "new_path"); got != "to/"+want {
			t.Errorf("new_path %q, want %q", got, "to/"+want)
		}
	}
}

func TestAppendStringMatchesJSON(t *testing.T) {
	cases := append([]string{}, nameCases...)
	for c := range 0x80 {
		cases = append(cases, string(rune(c)), "a"+string(rune(c))+"b")
	}
	for _, s := range cases {
		checkAppendString(t, s)
	}
}

func checkAppendString(t *testing.T, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		return
	}
	out := appendString([]byte("prefix"), s)
	if !bytes.HasPrefix(out, []byte("prefix")) {
		t.Fatalf("appendString(%q) lost the prefix: %q", s, out)
	}
	out = out[len("prefix"):]
	if !json.Valid(out) {
		t.Fatalf("appendString(%q) = %s: not valid JSON", s, out)
	}
	var back string
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatalf("appendString(%q) = %s: %v", s, out, err)
	}
	if back != s {
		t.Fatalf("appendString(%q) = %s, decodes to %q", s, out, back)
	}
	for _, c := range out {
		if c < 0x20 {
			t.Fatalf("appendString(%q) = %q: a raw control character", s, out)
		}
	}
	if bytes.Contains(out, []byte("\u2028")) || bytes.Contains(out, []byte("\u2029")) {
		t.Fatalf("appendString(%q) = %q: a raw line or paragraph separator", s, out)
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range nameCases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkAppendString(t, s)
		b := appendName(nil, "path", s)
		var m map[string]any
		if err := json.Unmarshal(append(append([]byte("{"), b[1:]...), '}'), &m); err != nil {
			t.Fatalf("appendName(%q) = %s: %v", s, b, err)
		}
		if got := name(t, m, "path"); got != s {
			t.Fatalf("appendName(%q) round-trips to %q", s, got)
		}
	})
}

func TestFilterOpsAndPaths(t *testing.T) {
	f, log := newFilter(t, Config{
		Ops:   []filter.Op{filter.OpOpen, filter.OpRename, filter.OpLink},
		Paths: filter.Patterns{filter.MustPattern("secrets/**"), filter.MustPattern("**/.env")},
	})
	posts := []struct {
		r    filter.Request
		want bool
	}{
		{filter.Request{Op: filter.OpOpen, Path: "secrets"}, true},
		{filter.Request{Op: filter.OpOpen, Path: "secrets/key"}, true},
		{filter.Request{Op: filter.OpOpen, Path: "a/b/.env"}, true},
		{filter.Request{Op: filter.OpOpen, Path: "public/key"}, false},
		{filter.Request{Op: filter.OpOpen, Path: ""}, false},
		{filter.Request{Op: filter.OpGetattr, Path: "secrets/key"}, false},
		{filter.Request{Op: filter.OpUnlink, Path: "secrets/key"}, false},
		{filter.Request{Op: filter.OpRename, Path: "secrets/key", NewPath: "public/key"}, true},
		{filter.Request{Op: filter.OpRename, Path: "public/key", NewPath: "secrets/key"}, true},
		{filter.Request{Op: filter.OpRename, Path: "public/a", NewPath: "public/b"}, false},
		{filter.Request{Op: filter.OpLink, Path: "public/a", NewPath: ".env"}, true},
		// NewPath counts only for rename and link.
		{filter.Request{Op: filter.OpOpen, Path: "public/a", NewPath: "secrets/x"}, false},
	}
	var want []string
	for i, p := range posts {
		r := p.r
		r.Caller.Pid = uint32(i)
		f.Post(&r, nil)
		if p.want {
			want = append(want, r.Op.String()+" "+r.Path)
		}
	}
	var got []string
	for _, m := range readLines(t, log) {
		got = append(got, m["op"].(string)+" "+name(t, m, "path"))
		if _, ok := m["new_path"]; ok != (m["op"] == "rename" || m["op"] == "link") {
			t.Errorf("new_path on %v", m)
		}
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("recorded:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestEveryFilteredOp(t *testing.T) {
	f, log := newFilter(t, Config{})
	var want int
	for o := range filter.NumOps {
		r := filter.Request{Op: o, Path: "p"}
		f.Post(&r, nil)
		if o.Filtered() {
			want++
		}
	}
	if got := len(readLines(t, log)); got != want {
		t.Errorf("%d lines, want one per filtered operation (%d)", got, want)
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Config{
		{Log: "relative.jsonl"},
		{Log: ""},
		{Log: filepath.Join(dir, "file", "audit.jsonl")},        // under a file
		{Log: filepath.Join(dir, "file", "sub", "audit.jsonl")}, // below a file
		{Log: filepath.Join(dir, "new", strings.Repeat("x", 300))},
		{Log: dir}, // a directory
		{Log: filepath.Join(dir, "ok.jsonl"), Ops: []filter.Op{filter.OpRead}},
		{Log: filepath.Join(dir, "ok.jsonl"), Ops: []filter.Op{filter.NumOps}},
	} {
		if f, err := New(c); err == nil {
			f.Close()
			t.Errorf("New(%+v) succeeded", c)
		}
	}
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Without a reader: refused at once rather than waiting for one.
	done := make(chan error, 1)
	go func() {
		f, err := New(Config{Log: fifo})
		if err == nil {
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Error("New on a FIFO without a reader succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("New on a FIFO without a reader blocks")
	}
	// With one: refused as not a regular file.
	rd, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if f, err := New(Config{Log: fifo}); err == nil {
		f.Close()
		t.Errorf("New on a FIFO succeeded")
	}
	if n := openLogs(); n != 0 {
		t.Errorf("%d logs left open by failed New calls", n)
	}
	// The directory made for the log whose name is too long is removed.
	if names := dirNames(t, dir); !slices.Equal(names, []string{"fifo", "file"}) {
		t.Errorf("failed New calls left %q behind", names)
	}
}

// dirNames lists the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestMissingDirsMade: New makes the log's missing directories, 0700,
// and Close keeps them and the log.
func TestMissingDirsMade(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "a", "b", "audit.jsonl")
	f, err := New(Config{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	f.Post(&filter.Request{Op: filter.OpUnlink, Path: "x"}, nil)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(dir, "a"), filepath.Join(dir, "a", "b")} {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, %v; want a directory of mode 0700", d, fi, err)
		}
	}
	if lines := readLines(t, log); len(lines) != 1 {
		t.Errorf("%d lines in the log, want 1", len(lines))
	}
}

// TestDiscard: Discard removes what New created, and only that: not a
// log that existed, not a log with lines, not a log another filter
// holds, not a directory with something else in it.
func TestDiscard(t *testing.T) {
	t.Run("Created", func(t *testing.T) {
		dir := t.TempDir()
		f, err := New(Config{Log: filepath.Join(dir, "a", "b", "audit.jsonl")})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Discard(); err != nil {
			t.Fatal(err)
		}
		if names := dirNames(t, dir); len(names) != 0 {
			t.Errorf("Discard left %q", names)
		}
		if err := f.Close(); err != nil {
			t.Errorf("Close after Discard: %v", err)
		}
	})
	t.Run("Existed", func(t *testing.T) {
		dir := t.TempDir()
		log := filepath.Join(dir, "audit.jsonl")
		if err := os.WriteFile(log, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := New(Config{Log: log})
		if err != nil {
			t.Fatal(err)
		}
		f.Discard()
		if _, err := os.Stat(log); err != nil {
			t.Errorf("Discard removed a log it did not create: %v", err)
		}
	})
	t.Run("Written", func(t *testing.T) {
		dir := t.TempDir()
		log := filepath.Join(dir, "a", "audit.jsonl")
		f, err := New(Config{Log: log})
		if err != nil {
			t.Fatal(err)
		}
		f.Post(&filter.Request{Op: filter.OpUnlink, Path: "x"}, nil)
		f.Discard()
		if lines := readLines(t, log); len(lines) != 1 {
			t.Errorf("%d lines after Discard, want the 1 written", len(lines))
		}
	})
	t.Run("Shared", func(t *testing.T) {
		dir := t.TempDir()
		log := filepath.Join(dir, "a", "audit.jsonl")
		f1, err := New(Config{Log: log})
		if err != nil {
			t.Fatal(err)
		}
		f2, err := New(Config{Log: log})
		if err != nil {
			t.Fatal(err)
		}
		f1.Discard()
		if _, err := os.Stat(log); err != nil {
			t.Errorf("Discard removed a log another filter holds: %v", err)
		}
		f2.Discard()
		if names := dirNames(t, dir); len(names) != 0 {
			t.Errorf("the last Discard left %q", names)
		}
	})
	t.Run("DirInUse", func(t *testing.T) {
		dir := t.TempDir()
		f, err := New(Config{Log: filepath.Join(dir, "a", "audit.jsonl")})
		if err != nil {
			t.Fatal(err)
		}
		other := filepath.Join(dir, "a", "other")
		if err := os.WriteFile(other, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		f.Discard()
		if names := dirNames(t, filepath.Join(dir, "a")); !slices.Equal(names, []string{"other"}) {
			t.Errorf("after Discard the directory holds %q, want only other", names)
		}
	})
	if n := openLogs(); n != 0 {
		t.Errorf("%d logs left open", n)
	}
}

func TestConfigIsCopied(t *testing.T) {
	ops := []filter.Op{filter.OpOpen}
	f, _ := newFilter(t, Config{Ops: ops})
	ops[0] = filter.OpUnlink
	if c := f.Config(); len(c.Ops) != 1 || c.Ops[0] != filter.OpOpen {
		t.Errorf("Config().Ops = %v after the caller's slice changed", c.Ops)
	}
}

func TestConcurrentPosts(t *testing.T) {
	const workers, per = 8, 1000
	f, log := newFilter(t, Config{})
	// A long name, so that a torn write would show.
	long := strings.Repeat("x", 300) + "/\"é\n"
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				r := filter.Request{Op: filter.OpOpen, Caller: filter.Caller{Uid: uint32(i), Pid: uint32(w)}, Path: long}
				f.Post(&r, nil)
			}
		})
	}
	wg.Wait()
	lines := readLines(t, log)
	if len(lines) != workers*per {
		t.Fatalf("%d lines, want %d", len(lines), workers*per)
	}
	var seen [workers][per]bool
	for _, m := range lines {
		w, i := num(t, m, "pid"), num(t, m, "uid")
		if w < 0 || w >= workers || i < 0 || i >= per || seen[w][i] {
			t.Fatalf("unexpected or repeated line %v", m)
		}
		seen[w][i] = true
		if name(t, m, "path") != long {
			t.Fatalf("path garbled: %v", m)
		}
	}
	if f.Errors() != 0 {
		t.Errorf("Errors() = %d", f.Errors())
	}
}

func TestSharedLog(t *testing.T) {
	log := filepath.Join(t.TempDir(), "audit.jsonl")
	base := openLogs()
	a, err := New(Config{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Config{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	// Another name for the same file shares it too.
	alias := filepath.Join(t.TempDir(), "alias.jsonl")
	if err := os.Symlink(log, alias); err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Log: alias})
	if err != nil {
		t.Fatal(err)
	}
	if a.log != b.log || a.log != c.log {
		t.Fatal("filters of the same log do not share it")
	}
	if n := openLogs(); n != base+1 {
		t.Fatalf("%d logs open, want %d", n, base+1)
	}
	post := func(f *Filter, p string) {
		r := filter.Request{Op: filter.OpOpen, Path: p}
		f.Post(&r, nil)
	}
	post(a, "a1")
	post(b, "b1")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil { // idempotent: drops no second reference
		t.Fatal(err)
	}
	post(b, "b2")
	post(c, "c1")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	post(c, "c2")
	if n := openLogs(); n != base+1 {
		t.Fatalf("%d logs open with one filter left, want %d", n, base+1)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if n := openLogs(); n != base {
		t.Fatalf("%d logs open after closing every filter, want %d", n, base)
	}
	var got []string
	for _, m := range readLines(t, log) {
		got = append(got, m["path"].(string))
	}
	if s := strings.Join(got, " "); s != "a1 b1 b2 c1 c2" {
		t.Errorf("log holds %s", s)
	}
	for _, f := range []*Filter{a, b, c} {
		if f.Errors() != 0 {
			t.Errorf("Errors() = %d", f.Errors())
		}
	}
	// Once the log is closed, a late operation is counted, not lost
	// silently, and its result is unchanged.
	r := filter.Request{Op: filter.OpOpen, Path: "late"}
	if err := c.Post(&r, syscall.EPERM); err != syscall.EPERM {
		t.Errorf("Post after Close = %v", err)
	}
	if c.Errors() != 1 {
		t.Errorf("Errors() = %d after a Post on a closed log, want 1", c.Errors())
	}
	// A new filter for the path opens it again.
	d, _ := newFilter(t, Config{Log: log})
	post(d, "d1")
	if n := len(readLines(t, log)); n != 6 {
		t.Errorf("%d lines, want 6", n)
	}
}

// TestCloseWhilePosting checks that closing the last filter of a log while
// operations are still being recorded neither tears a line nor loses one
// silently: every Post either writes a whole line or counts an error.
func TestCloseWhilePosting(t *testing.T) {
	const workers, per = 4, 2000
	log := filepath.Join(t.TempDir(), "audit.jsonl")
	f, err := New(Config{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			<-start
			for i := range per {
				r := filter.Request{Op: filter.OpOpen, Caller: filter.Caller{Uid: uint32(i), Pid: uint32(w)}, Path: "p"}
				if err := f.Post(&r, syscall.ENOENT); err != syscall.ENOENT {
					t.Errorf("Post = %v", err)
				}
			}
		})
	}
	close(start)
	time.Sleep(time.Millisecond)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	lines := readLines(t, log)
	if got := uint64(len(lines)) + f.Errors(); got != workers*per {
		t.Errorf("%d lines + %d errors, want %d", len(lines), f.Errors(), workers*per)
	}
}

func TestRotatedLogReopened(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "audit.jsonl")
	a, _ := newFilter(t, Config{Log: log})
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	b, _ := newFilter(t, Config{Log: log})
	if a.log == b.log {
		t.Fatal("a filter made after rotation writes to the rotated file")
	}
	r := filter.Request{Op: filter.OpOpen, Path: "old"}
	a.Post(&r, nil)
	r.Path = "new"
	b.Post(&r, nil)
	if l := readLines(t, log+".1"); len(l) != 1 || l[0]["path"] != "old" {
		t.Errorf("rotated log holds %v", l)
	}
	if l := readLines(t, log); len(l) != 1 || l[0]["path"] != "new" {
		t.Errorf("new log holds %v", l)
	}
}

func TestWriteErrorsCounted(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	f, err := New(Config{Log: "/dev/full"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := filter.Request{Op: filter.OpOpen, Path: "x"}
	for _, want := range []error{nil, syscall.ENOENT} {
		if got := f.Post(&r, want); got != want {
			t.Errorf("Post = %v, want %v unchanged", got, want)
		}
	}
	if f.Errors() != 2 {
		t.Errorf("Errors() = %d, want 2", f.Errors())
	}
}

// TestShortWrite checks that a line written only in part is counted and
// ended with a newline, so that the next line stays whole.
func TestShortWrite(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	rd, wr := os.NewFile(uintptr(p[0]), "r"), os.NewFile(uintptr(p[1]), "w")
	defer rd.Close()
	size, err := unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, 4096)
	if err != nil {
		t.Skip("F_SETPIPE_SZ:", err)
	}
	raw, err := wr.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	lf := &logFile{f: wr, raw: raw, refs: 1, key: fileKey{^uint64(0), ^uint64(0)}}
	registry.mu.Lock()
	if registry.files == nil {
		registry.files = map[fileKey]*logFile{}
	}
	registry.files[lf.key] = lf
	registry.mu.Unlock()
	f := &Filter{log: lf}
	f.ops[filter.OpOpen] = true
	defer f.Close()

	got := make(chan []byte)
	go func() {
		// Let the short write happen before draining the pipe.
		time.Sleep(100 * time.Millisecond)
		var all []byte
		buf := make([]byte, 1<<16)
		for {
			n, err := rd.Read(buf)
			all = append(all, buf[:n]...)
			if err != nil || bytes.Count(all, []byte("\n")) == 2 {
				break
			}
		}
		got <- all
	}()
	r := filter.Request{Op: filter.OpOpen, Path: strings.Repeat("y", 3*size)}
	f.Post(&r, nil)
	if f.Errors() != 1 {
		t.Errorf("Errors() = %d after a short write, want 1", f.Errors())
	}
	r.Path = "next"
	f.Post(&r, nil)
	all := <-got
	torn, next, ok := bytes.Cut(all, []byte("\n"))
	if !ok || len(torn) != size || !json.Valid(bytes.TrimSuffix(next, []byte("\n"))) {
		t.Errorf("pipe got %d bytes of torn line, then %q", len(torn), next)
	}
}

func BenchmarkPost(b *testing.B) {
	f, _ := newFilter(b, Config{})
	r := filter.Request{Op: filter.OpOpen, Caller: caller, Path: "src/github.com/sievefs/sievefs/filter/audit/audit.go"}
	b.ReportAllocs()
	for b.Loop() {
		f.Post(&r, nil)
	}
	if f.Errors() != 0 {
		b.Fatalf("Errors() = %d", f.Errors())
	}
}

func BenchmarkPostParallel(b *testing.B) {
	f, _ := newFilter(b, Config{})
	r := filter.Request{Op: filter.OpRename, Caller: caller, Path: "a/b/c", NewPath: "a/b/d\xff"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		r := r
		for pb.Next() {
			f.Post(&r, syscall.ENOENT)
		}
	})
}

// BenchmarkFormat measures building a line alone.
func BenchmarkFormat(b *testing.B) {
	r := filter.Request{Op: filter.OpRename, Caller: caller, Path: "a/b/\"quoted\"\n", NewPath: "a/b/d"}
	buf := make([]byte, 0, 512)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		buf = appendRecord(buf[:0], now, &r, true, syscall.ENOENT)
	}
}
