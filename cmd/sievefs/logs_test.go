package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// jsonLines decodes the JSON objects of a log, one per line; lines that
// are not JSON objects are skipped.
func jsonLines(text string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// TestDebugRequestLine checks that with --debug each request's log line
// names the operation, the view path, the result and a duration a person
// reads ("12.3µs"), for requests on a node and on a name in a directory.
func TestDebugRequestLine(t *testing.T) {
	requireFuse(t)
	lower, mnt := viewDirs(t)
	if err := os.MkdirAll(filepath.Join(lower, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(lower, "dir/file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startView(t, mnt, nil, "mount", "--debug", "--log-format", "json", lower, mnt)
	if _, err := os.ReadFile(filepath.Join(mnt, "dir/file")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "dir/missing")); !os.IsNotExist(err) {
		t.Fatalf("stat dir/missing: %v", err)
	}
	d.Stop(t)

	type want struct{ op, path, result string }
	wants := []want{{"lookup", "/dir/file", "ok"}, {"lookup", "/dir/missing", "ENOENT"}, {"open", "/dir/file", "ok"}}
	seen := map[want]bool{}
	for _, m := range jsonLines(d.Stderr.String()) {
		if m["msg"] != "request" {
			continue
		}
		w := want{fmt.Sprint(m["op"]), fmt.Sprint(m["path"]), fmt.Sprint(m["result"])}
		seen[w] = true
		ds, _ := m["duration"].(string)
		if dur, err := time.ParseDuration(ds); err != nil || dur < 0 {
			t.Errorf("request line %v: duration %q is not a readable duration", m, m["duration"])
		}
	}
	for _, w := range wants {
		if !seen[w] {
			t.Errorf("no request line with op %s, path %s, result %s; log:\n%s", w.op, w.path, w.result, d.Stderr)
		}
	}
}

// TestAuditCounted checks that the audit lines of an open tell a read
// open from a write open, and that the lines an audit rule writes are
// counted as its decisions, in status (text and JSON) and in metrics.
func TestAuditCounted(t *testing.T) {
	requireFuse(t)
	base, lower, mnt := policyDirs(t)
	log := filepath.Join(base, "audit.jsonl")
	pf := writePolicy(t, base, "policy.yaml", fmt.Sprintf("rules:\n  - audit: {ops: [open, create], log: %q}\n", log))
	sock := filepath.Join(sharedTempDir(t), "metrics.sock")
	startView(t, mnt, nil, "mount", "--policy", pf, "--metrics-addr", "unix:"+sock, lower, mnt)

	if _, err := os.ReadFile(filepath.Join(mnt, "a.txt")); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(mnt, "b.txt"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.WriteFile(filepath.Join(mnt, "new.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	lines := jsonLines(string(data))
	access := map[string]string{}
	for _, m := range lines {
		access[fmt.Sprint(m["op"], " ", m["path"])] = fmt.Sprint(m["access"], " ", m["flags"])
	}
	for key, want := range map[string]string{"open a.txt": "read O_RDONLY", "open b.txt": "write O_WRONLY", "create new.txt": "write O_WRONLY"} {
		if got := access[key]; !strings.HasPrefix(got, want) {
			t.Errorf("audit line of %s: access and flags %q, want %q…; log:\n%s", key, got, want, data)
		}
	}
	if got := access["open b.txt"]; !strings.Contains(got, "O_APPEND") {
		t.Errorf("audit line of the append open of b.txt: flags %q lack O_APPEND", got)
	}

	e := statusOf(t, mnt)
	if len(e.Filters) != 1 || e.Filters[0].Decisions["record"] != uint64(len(lines)) {
		t.Errorf("status filters %+v, want 1:audit with record=%d (the lines in the log)", e.Filters, len(lines))
	}
	r := runBinary(t, "status", mnt)
	if !hasRow(r.stdout, "rule 1:audit", fmt.Sprintf("record=%d", len(lines))) {
		t.Errorf("status lacks the audit rule's lines:\n%s", r.stdout)
	}
	body := scrape(t, func() (net.Conn, error) { return net.Dial("unix", sock) })
	want := fmt.Sprintf(`sievefs_filter_decisions_total{decision="record",rule="1:audit"} %d`, len(lines))
	if !strings.Contains(body, want) {
		t.Errorf("metrics lack %s:\n%s", want, grepLines(body, "filter_decisions"))
	}
}

// grepLines returns the lines of text that contain s.
func grepLines(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
