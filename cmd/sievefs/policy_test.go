package main

// Tests of `sievefs mount --policy` on real mounts: filters applied, SIGHUP
// reloads, bad policies refused before mounting.

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sievefs/sievefs/control"
)

// policyDirs makes a view's directories with files a.txt, b.txt and
// c.txt in the lower tree, and returns them with base, where policies go.
func policyDirs(t *testing.T) (base, lower, mnt string) {
	t.Helper()
	lower, mnt = viewDirs(t)
	for _, n := range []string{"a.txt", "b.txt", "c.txt"} {
		if err := os.WriteFile(filepath.Join(lower, n), []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Dir(lower), lower, mnt
}

// listing returns the names in dir.
func listing(t *testing.T, dir string) []string {
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

// eventually polls cond for up to 10 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hasRow reports whether the status text has a row label, value…
func hasRow(out, label, value string) bool {
	for _, line := range strings.Split(out, "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), label+" ")
		if ok && strings.HasPrefix(strings.TrimSpace(rest), value) {
			return true
		}
	}
	return false
}

// statusOf returns the status of the mount on mnt.
func statusOf(t *testing.T, mnt string) *control.Entry {
	t.Helper()
	entries, r := statusJSON(t, mnt)
	if len(entries) != 1 || entries[0].Status == nil {
		t.Fatalf("status of %s: exit %d, %+v; stderr:\n%s", mnt, r.code, entries, r.stderr)
	}
	return &entries[0]
}

func TestMountPolicy(t *testing.T) {
	requireFuse(t)
	base, lower, mnt := policyDirs(t)
	pf := writePolicy(t, base, "policy.yaml", "rules:\n  - hide: [a.txt]\n")
	// Given relative to the daemon's directory; status shows it absolute.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, pf)
	if err != nil {
		t.Fatal(err)
	}
	d := startView(t, mnt, nil, "mount", "--policy", rel, lower, mnt)

	if got := listing(t, mnt); !slices.Equal(got, []string{"b.txt", "c.txt", "data.txt"}) {
		t.Errorf("listing %q, want a.txt hidden", got)
	}
	if _, err := os.Stat(filepath.Join(mnt, "a.txt")); !os.IsNotExist(err) {
		t.Errorf("stat of the hidden a.txt: %v", err)
	}
	e := statusOf(t, mnt)
	if e.Policy != pf || e.PolicyError != "" {
		t.Errorf("status policy %q error %q, want %q and none", e.Policy, e.PolicyError, pf)
	}
	if len(e.Filters) != 1 || e.Filters[0].Rule != "1:hide" || e.Filters[0].Decisions["drop"] == 0 {
		t.Errorf("status filters %+v, want 1:hide with drops", e.Filters)
	}
	r := runBinary(t, "status", mnt)
	if !hasRow(r.stdout, "policy", pf) || !hasRow(r.stdout, "rule 1:hide", "drop=") {
		t.Errorf("status lacks the policy or its rule:\n%s", r.stdout)
	}

	t.Run("Reload", func(t *testing.T) {
		writePolicy(t, base, "policy.yaml", "rules:\n  - readonly: [\"**\"]\n  - hide: [b.txt]\n")
		d.Cmd.Process.Signal(syscall.SIGHUP)
		eventually(t, "a.txt visible and b.txt hidden after SIGHUP", func() bool {
			return slices.Equal(listing(t, mnt), []string{"a.txt", "c.txt", "data.txt"})
		})
		if b, err := os.ReadFile(filepath.Join(mnt, "a.txt")); err != nil || string(b) != "a.txt" {
			t.Errorf("read a.txt: %q, %v", b, err)
		}
		if err := os.WriteFile(filepath.Join(mnt, "new.txt"), nil, 0o644); !errors.Is(err, syscall.EROFS) {
			t.Errorf("create under the new readonly rule: %v, want EROFS", err)
		}
		eventually(t, "the daemon logs the reload", func() bool {
			return strings.Contains(d.Stderr.String(), `msg="policy reloaded" policy=`+pf+" rules=2")
		})
		e := statusOf(t, mnt)
		if len(e.Filters) != 2 || e.Filters[0].Rule != "1:readonly" || e.Filters[1].Rule != "2:hide" {
			t.Errorf("status filters %+v after the reload", e.Filters)
		}
	})
	t.Run("BrokenReload", func(t *testing.T) {
		writePolicy(t, base, "policy.yaml", "rules:\n  - hide: [c.txt]\n  - hidden: [a.txt]\n")
		d.Cmd.Process.Signal(syscall.SIGHUP)
		var e *control.Entry
		eventually(t, "status shows the failed reload", func() bool {
			e = statusOf(t, mnt)
			return e.PolicyError != ""
		})
		if want := pf + `:3:5: rule 2: unknown key "hidden"`; !strings.HasPrefix(e.PolicyError, want) {
			t.Errorf("policy_error %q, want it to begin with %q", e.PolicyError, want)
		}
		if !strings.Contains(d.Stderr.String(), `level=ERROR msg="policy reload failed; keeping the previous policy"`) {
			t.Errorf("no error logged:\n%s", d.Stderr)
		}
		// The previous policy stays.
		if got := listing(t, mnt); !slices.Equal(got, []string{"a.txt", "c.txt", "data.txt"}) {
			t.Errorf("listing %q after a broken reload, want the previous policy's", got)
		}
		r := runBinary(t, "status", mnt)
		if !hasRow(r.stdout, "reload failed", pf+":3:5:") {
			t.Errorf("status text lacks the reload error:\n%s", r.stdout)
		}
		r = runBinary(t, "status", "--json", mnt)
		if !strings.Contains(r.stdout, `"policy_error": "`+pf+`:3:5: `) {
			t.Errorf("status --json lacks policy_error:\n%s", r.stdout)
		}
		// A good policy again clears the error.
		writePolicy(t, base, "policy.yaml", "rules: []\n")
		d.Cmd.Process.Signal(syscall.SIGHUP)
		eventually(t, "the error cleared and every file shown", func() bool {
			return statusOf(t, mnt).PolicyError == "" && len(listing(t, mnt)) == 4
		})
	})
	t.Run("Unmount", func(t *testing.T) {
		d.Cmd.Process.Signal(syscall.SIGTERM)
		if code := d.Wait(t, 10*time.Second); code != exitOK {
			t.Errorf("exit %d after SIGTERM; stderr:\n%s", code, d.Stderr)
		}
		if mountedOn(mnt) {
			t.Error("still mounted")
		}
	})
}

func TestMountPolicyPassthrough(t *testing.T) {
	requireFuse(t)
	base, lower, mnt := policyDirs(t)
	pf := writePolicy(t, base, "policy.yaml", "passthrough: off\nrules: []\n")
	startView(t, mnt, nil, "mount", "--policy", pf, lower, mnt)
	if e := statusOf(t, mnt); e.Passthrough.Mode != "off" {
		t.Errorf("passthrough %q, want the policy's off", e.Passthrough.Mode)
	}
	// The command line wins over the policy.
	_, lower2, mnt2 := policyDirs(t)
	startView(t, mnt2, nil, "mount", "--policy", pf, "--passthrough", "auto", lower2, mnt2)
	if e := statusOf(t, mnt2); e.Passthrough.Mode != "auto" {
		t.Errorf("passthrough %q, want the flag's auto", e.Passthrough.Mode)
	}
}

func TestMountPolicyBad(t *testing.T) {
	requireFuse(t)
	base, lower, mnt := policyDirs(t)
	bad := writePolicy(t, base, "bad.yaml", "rules:\n  - hide: [a.txt]\n  - deny: {ops: [write], paths: [b.txt]}\n")
	notDir := writePolicy(t, base, "log.yaml", "rules:\n  - audit: {log: "+filepath.Join(lower, "a.txt", "audit.jsonl")+"}\n")
	for _, c := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"Flag", []string{"mount", "--policy", bad, lower, mnt}, exitUsage, bad + `:3:18: rule 2 (deny): ops: operation "write" is not filtered`},
		{"Option", []string{"mount", "-o", "ro,policy=" + bad, lower, mnt}, exitUsage, bad + ":3:18: "},
		{"Missing", []string{"mount", "--policy", filepath.Join(base, "none.yaml"), lower, mnt}, exitUsage, "no such file or directory"},
		{"AuditLogDir", []string{"mount", "--policy", notDir, lower, mnt}, exitUsage, notDir + ":2:5: rule 1 (audit): audit log"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := runBinary(t, c.args...)
			if r.code != c.code || !strings.Contains(r.stderr, c.want) {
				t.Errorf("exit %d, want %d with %q; stderr:\n%s", r.code, c.code, c.want, r.stderr)
			}
			if mountedOn(mnt) {
				detachAll(t, mnt)
				t.Fatal("mounted despite a bad policy")
			}
		})
	}
}

func TestMountPolicyHelper(t *testing.T) {
	requireFuse(t)
	prefix := t.TempDir()
	if r := runBinary(t, "install-helper", "--prefix", prefix, "--mandir", ""); r.code != exitOK {
		t.Fatalf("install-helper: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	helper := filepath.Join(prefix, "mount.fuse.sievefs")
	base, lower, mnt := policyDirs(t)
	t.Cleanup(func() { cleanupDaemonOf(t, mnt) })
	pf := writePolicy(t, base, "policy.yaml", "rules:\n  - hide: [b.txt]\n")

	// A relative path would be read from /, where the daemon runs.
	r := runAs(t, nil, helper, lower, mnt, "-o", "policy=policy.yaml")
	if r.code != exitUsage || !strings.Contains(r.stderr, "give an absolute path") {
		t.Errorf("relative policy: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	bad := writePolicy(t, base, "bad.yaml", "rules:\n  - hide: []\n")
	r = runAs(t, nil, helper, lower, mnt, "-o", "rw,policy="+bad)
	if r.code != exitUsage || !strings.Contains(r.stderr, bad+":2:11: rule 1 (hide): empty list") {
		t.Errorf("bad policy: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	if mountedOn(mnt) {
		t.Fatal("mounted after a failed helper")
	}

	r = runAs(t, nil, helper, lower, mnt, "-o", "rw,nosuid,nodev,policy="+pf)
	if r.code != exitOK {
		t.Fatalf("helper: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	if got := listing(t, mnt); !slices.Equal(got, []string{"a.txt", "c.txt", "data.txt"}) {
		t.Errorf("listing %q, want b.txt hidden", got)
	}
	if e := statusOf(t, mnt); e.Policy != pf {
		t.Errorf("status policy %q, want %q", e.Policy, pf)
	}
	if r := runBinary(t, "umount", mnt); r.code != exitOK {
		t.Fatalf("umount: exit %d; stderr:\n%s", r.code, r.stderr)
	}
}

// TestSighupWithoutPolicy: SIGHUP to a daemon mounted without a policy is
// logged and changes nothing.
func TestSighupWithoutPolicy(t *testing.T) {
	requireFuse(t)
	lower, mnt := viewDirs(t)
	d := startView(t, mnt, nil, "mount", lower, mnt)
	d.Cmd.Process.Signal(syscall.SIGHUP)
	eventually(t, "the daemon logs that there is no policy", func() bool {
		return strings.Contains(d.Stderr.String(), "no policy to reload")
	})
	if b, err := os.ReadFile(filepath.Join(mnt, "data.txt")); err != nil || string(b) != "lower data" {
		t.Errorf("read after SIGHUP: %q, %v", b, err)
	}
	if e := statusOf(t, mnt); e.Policy != "" || e.PolicyError != "" || len(e.Filters) != 0 {
		t.Errorf("status %+v", e.Status)
	}
}
