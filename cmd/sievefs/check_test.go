package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writePolicy writes a policy file into dir and returns its path.
func writePolicy(t *testing.T, dir, name, src string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	logs := filepath.Join(dir, "logs")
	good := writePolicy(t, dir, "good.yaml", `passthrough: off
rules:
  - hide: ["secrets/**"]
  - deny: {ops: [unlink], paths: ["records/**"], errno: EPERM}
    unless: {uids: [0]}
  - audit: {log: `+logs+`/sub/audit.jsonl}
`)
	bad := writePolicy(t, dir, "bad.yaml", `rules:
  - hide: ["/secrets"]
  - deny: {ops: [read], paths: [a]}
  - remap: {paths: [a], file_mode: 0640}
passthru: auto
`)

	t.Run("Good", func(t *testing.T) {
		// The audit log's directories do not exist: mount would make
		// them, check makes them and removes them again.
		r := runBinary(t, "check", good)
		if r.code != exitOK || r.stderr != "" {
			t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
		}
		want := good + `: 3 rules, passthrough off
rule 1: hide secrets/**, for every caller
rule 2: deny unlink on records/** with EPERM, for callers other than uid 0
rule 3: audit every operation on every path to ` + logs + `/sub/audit.jsonl, for every caller
`
		if r.stdout != want {
			t.Errorf("output:\n%s\nwant:\n%s", r.stdout, want)
		}
		if _, err := os.Stat(logs); !os.IsNotExist(err) {
			t.Errorf("check left the audit log's directory behind: %v", err)
		}
	})
	t.Run("Bad", func(t *testing.T) {
		r := runBinary(t, "check", bad)
		if r.code != exitUsage {
			t.Errorf("exit %d, want %d", r.code, exitUsage)
		}
		if r.stdout != "" {
			t.Errorf("output on stdout:\n%s", r.stdout)
		}
		want := []string{
			bad + `:2:12: rule 1 (hide): bad glob "/secrets": must be relative`,
			bad + `:3:18: rule 2 (deny): ops: operation "read" is not filtered (hint: reads and writes are not filtered: deny open instead)`,
			bad + `:4:36: rule 3 (remap): file_mode: 0640 is a YAML number`,
			bad + `:5:1: top level: unknown key "passthru" (hint: did you mean "passthrough"?`,
			"sievefs check: " + bad + ": 4 errors",
		}
		lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
		if len(lines) != len(want) {
			t.Fatalf("stderr has %d lines, want %d:\n%s", len(lines), len(want), r.stderr)
		}
		for i, w := range want {
			if !strings.HasPrefix(lines[i], w) {
				t.Errorf("line %d:\n  %s\nwant it to begin with\n  %s", i+1, lines[i], w)
			}
		}
	})
	t.Run("GoodAndBad", func(t *testing.T) {
		r := runBinary(t, "check", good, bad)
		if r.code != exitUsage || !strings.Contains(r.stdout, "rule 1: hide secrets/**") || !strings.Contains(r.stderr, bad+":2:12:") {
			t.Errorf("exit %d; stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("Missing", func(t *testing.T) {
		r := runBinary(t, "check", filepath.Join(dir, "missing.yaml"))
		if r.code != exitUsage || !strings.Contains(r.stderr, "no such file or directory") {
			t.Errorf("exit %d; stderr:\n%s", r.code, r.stderr)
		}
	})
	t.Run("Usage", func(t *testing.T) {
		r := runBinary(t, "check")
		if r.code != exitUsage || !strings.Contains(r.stderr, "want a policy FILE\nRun 'sievefs check --help' for usage.\n") {
			t.Errorf("no FILE: exit %d; stderr:\n%s", r.code, r.stderr)
		}
		r = runBinary(t, "check", "-h")
		if r.code != exitOK || !strings.Contains(r.stdout, "usage: sievefs check [--lower DIR] FILE") || !strings.Contains(r.stdout, "Exits 0 when every file is valid, 2") || !strings.Contains(r.stdout, "-lower") {
			t.Errorf("-h: exit %d; stdout:\n%s", r.code, r.stdout)
		}
	})
}

// TestCheckExamples checks every policy in examples/.
func TestCheckExamples(t *testing.T) {
	files, err := filepath.Glob("../../examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 6 {
		t.Errorf("%d example policies, want at least 6", len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			r := runBinary(t, "check", f)
			if r.code != exitOK {
				t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
			}
			if !strings.Contains(r.stdout, "rule 1: ") {
				t.Errorf("no rules:\n%s", r.stdout)
			}
		})
	}
}

// TestHelpMentionsPolicy: the help of the commands documents the policy
// and its exit code.
func TestHelpMentionsPolicy(t *testing.T) {
	r := runBinary(t, "mount", "-h")
	for _, w := range []string{"-policy", "reloaded on SIGHUP", "2 usage: a bad flag,\noption or value, or a bad --policy file"} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("sievefs mount -h lacks %q:\n%s", w, r.stdout)
		}
	}
	if r := runBinary(t, "--help"); !strings.Contains(r.stdout, "sievefs check [--lower DIR] FILE...") {
		t.Errorf("sievefs --help lacks check:\n%s", r.stdout)
	}
}
