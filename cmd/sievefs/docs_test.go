package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// docBlock returns the first fenced code block after heading in the
// Markdown file path (relative to the repository root).
func docBlock(t *testing.T, path, heading string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", path))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	i := strings.Index(doc, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("%s has no heading %q", path, heading)
	}
	rest := doc[i:]
	start := strings.Index(rest, "\n```")
	if start < 0 {
		t.Fatalf("%s: no code block after %q", path, heading)
	}
	rest = rest[start+4:]
	rest = rest[strings.Index(rest, "\n")+1:]
	end := strings.Index(rest, "\n```")
	if end < 0 {
		t.Fatalf("%s: unterminated code block after %q", path, heading)
	}
	return rest[:end+1]
}

var (
	digits = regexp.MustCompile(`[0-9]+`)
	spaces = regexp.MustCompile(`[ \t]+`)
)

// shape reduces output to what an example must have in common with the
// real thing: numbers become N and runs of blanks one space; lines of
// commands ("$ …") are dropped.
func shape(text string, names map[string]string) []string {
	for from, to := range names {
		text = strings.ReplaceAll(text, from, to)
	}
	var out []string
	for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if strings.HasPrefix(l, "$ ") {
			continue
		}
		out = append(out, strings.TrimRight(spaces.ReplaceAllString(digits.ReplaceAllString(l, "N"), " "), " "))
	}
	return out
}

// TestStatusDocExample checks that the example of `sievefs status` in
// docs/operations.md is what the command prints, line by line (numbers
// aside), for the situation it shows: a policy with a hide and a readonly
// rule that both decided something, and one file open on passthrough.
func TestStatusDocExample(t *testing.T) {
	requireFuse(t)
	base, lower, mnt := policyDirs(t)
	for _, d := range []string{"archive", "secret"} {
		if err := os.Mkdir(filepath.Join(lower, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(lower, "report.pdf"), []byte("%PDF"), 0o644); err != nil {
		t.Fatal(err)
	}
	pf := writePolicy(t, base, "view.yaml", "rules:\n  - hide: [secret]\n  - readonly: [\"archive/**\"]\n")
	startView(t, mnt, nil, "mount", "--policy", pf, lower, mnt)
	listing(t, mnt) // hide drops secret
	if _, err := os.Stat(filepath.Join(mnt, "secret")); !os.IsNotExist(err) {
		t.Fatalf("stat secret: %v", err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "archive/new"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("create in archive: %v, want EROFS", err)
	}
	f, err := os.Open(filepath.Join(mnt, "report.pdf"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	r := runBinary(t, "status", mnt)
	if r.code != 0 {
		t.Fatalf("status: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	got := shape(r.stdout, map[string]string{mnt: "/mnt/view", lower: "/srv/data", pf: "/etc/sievefs/view.yaml"})
	want := shape(docBlock(t, "docs/operations.md", "## `sievefs status`"), nil)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("docs/operations.md's status example is not what sievefs status prints (numbers aside).\nexample:\n%s\nprinted (paths as in the example):\n%s",
			strings.Join(want, "\n"), strings.Join(got, "\n"))
	}
}

// TestSystemdDocSteps runs the install steps of docs/usage.md (systemd) as
// written, in a scratch root: the binary is the one under test, systemctl
// is recorded rather than run, and absolute paths but the mountpoint's
// name go under the scratch root.
func TestSystemdDocSteps(t *testing.T) {
	if _, err := exec.LookPath("systemd-escape"); err != nil {
		t.Skip("no systemd-escape")
	}
	steps := docBlock(t, "docs/usage.md", "## systemd")
	root, work, bin := t.TempDir(), t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(work, "contrib"), 0o755); err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile("../../contrib/sievefs@.service")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "contrib/sievefs@.service"), unit, 0o644); err != nil {
		t.Fatal(err)
	}
	calls := filepath.Join(bin, "systemctl.calls")
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte("#!/bin/sh\necho \"$@\" >>"+calls+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	build := "go build -o sievefs ./cmd/sievefs"
	if !strings.Contains(steps, build) {
		t.Fatalf("the steps do not build with %q:\n%s", build, steps)
	}
	script := strings.NewReplacer(
		build, "cp "+binary(t)+" sievefs",
		" /usr/local/bin/", " "+root+"/usr/local/bin/",
		" /etc/", " "+root+"/etc/",
		">/etc/", ">"+root+"/etc/",
		" /mnt/view\n", " "+root+"/mnt/view\n",
	).Replace(steps)
	if err := os.MkdirAll(filepath.Join(root, "usr/local/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "etc/systemd/system"), 0o755); err != nil {
		t.Fatal(err) // there on any machine with systemd
	}
	cmd := exec.Command("bash", "-e", "-c", script)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the steps fail: %v\n%s\nscript:\n%s", err, out, script)
	}
	for _, f := range []string{"usr/local/bin/sievefs", "etc/sievefs/mnt-view.env", "etc/systemd/system/sievefs@.service", "mnt/view"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Errorf("after the steps: %v", err)
		}
	}
	got, err := os.ReadFile(calls)
	if err != nil {
		t.Fatal(err)
	}
	if want := "daemon-reload\nenable --now sievefs@mnt-view.service\n"; string(got) != want {
		t.Errorf("systemctl called with\n%s\nwant\n%s", got, want)
	}
}
