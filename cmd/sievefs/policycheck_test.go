package main

// Tests that sievefs check refuses what sievefs mount refuses, that the
// shipped examples work on a fresh machine, and that "dir/" globs and the
// warning about bare directory names reach users as documented.

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/sievefs/sievefs/control"
)

// TestCheckRefusesWhatMountRefuses: for policies that mount refuses, check
// exits as mount does (2) with the same FILE:LINE:COL lines, and neither
// leaves anything behind.
func TestCheckRefusesWhatMountRefuses(t *testing.T) {
	requireFuse(t)
	base, lower, mnt := policyDirs(t)
	logs := filepath.Join(base, "logs")
	for _, c := range []struct {
		name, src string
		want      string // the first error line, after the file name
	}{
		{"Parse", "rules:\n  - readonly: [\"/archive/\"]\n",
			`:2:16: rule 1 (readonly): bad glob "/archive/": must be relative`},
		// The first log could be made; the second cannot (its directory
		// would be a file): the first is removed again.
		{"AuditLog", "rules:\n  - audit: {log: " + logs + "/ok.jsonl}\n  - hide: [x]\n  - audit:\n      ops: [open]\n      log: " +
			filepath.Join(lower, "a.txt", "audit.jsonl") + "\n",
			":4:5: rule 3 (audit): audit log"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pf := writePolicy(t, base, c.name+".yaml", c.src)
			check := runBinary(t, "check", pf)
			mount := runBinary(t, "mount", "--policy", pf, lower, mnt)
			if mountedOn(mnt) {
				detachAll(t, mnt)
				t.Fatal("mounted despite a bad policy")
			}
			if check.code != exitUsage || mount.code != exitUsage {
				t.Errorf("check exit %d, mount exit %d, want %d for both", check.code, mount.code, exitUsage)
			}
			if !strings.HasPrefix(check.stderr, pf+c.want) {
				t.Errorf("check stderr:\n%s\nwant it to begin with %s%s", check.stderr, pf, c.want)
			}
			// The same lines, but for the command's name on the count.
			if got := strings.ReplaceAll(mount.stderr, "sievefs mount: ", "sievefs check: "); got != check.stderr {
				t.Errorf("mount stderr:\n%s\ncheck stderr:\n%s", mount.stderr, check.stderr)
			}
			if _, err := os.Stat(logs); !os.IsNotExist(err) {
				t.Errorf("a refused policy left %s behind: %v", logs, err)
			}
		})
	}
}

// freshExamplesScript checks and mounts the shipped examples view.yaml and
// audit.yaml in a mount namespace of its own whose /var/log is an empty
// tmpfs, as on a fresh machine. Arguments: BIN HELPER EXAMPLES LOWER MNT.
const freshExamplesScript = `
BIN=$1 HELPER=$2 EX=$3 LOW=$4 MNT=$5
mount -t tmpfs -o mode=0755 tmpfs /var/log || exit 1
trap '"$BIN" umount "$MNT" >/dev/null 2>&1' EXIT
echo "fresh: [$(ls -A /var/log)]"
for p in view audit; do
	"$BIN" check "$EX/$p.yaml" >/dev/null
	echo "check $p exit $?"
done
echo "after check: [$(ls -A /var/log)]"
"$HELPER" "$LOW" "$MNT" -o "policy=$EX/view.yaml"
echo "mount view exit $?"
cat "$MNT/docs/readme.txt" >/dev/null
"$BIN" umount "$MNT"
echo "umount view exit $?"
"$HELPER" "$LOW" "$MNT" -o "policy=$EX/audit.yaml"
echo "mount audit exit $?"
cat "$MNT/records/2023.csv" >/dev/null
"$BIN" umount "$MNT"
echo "umount audit exit $?"
echo "directory: $(stat -c '%a %U' /var/log/sievefs)"
for f in /var/log/sievefs/*; do
	echo "log: $(basename "$f") $(stat -c %a "$f") opens=$(grep -c '"op":"open"' "$f")"
done
`

// TestExamplesOnFreshMachine: the shipped examples log under
// /var/log/sievefs; on a machine without it, check accepts them and leaves
// /var/log as it was, and mount makes the directory (0700) and logs.
func TestExamplesOnFreshMachine(t *testing.T) {
	requireFuse(t)
	prefix := t.TempDir()
	if r := runBinary(t, "install-helper", "--prefix", prefix, "--mandir", ""); r.code != exitOK {
		t.Fatalf("install-helper: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	examples, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	lower, mnt := viewDirs(t)
	for _, d := range []string{"docs", "records"} {
		if err := os.Mkdir(filepath.Join(lower, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"docs/readme.txt", "records/2023.csv"} {
		if err := os.WriteFile(filepath.Join(lower, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The mount lives in the script's namespace; a daemon the script
	// could not unmount is found through its control socket.
	t.Cleanup(func() {
		if st, err := control.Query(control.SocketPath(mnt, 0)); err == nil && alive(st.PID) {
			t.Errorf("a daemon of %s outlived the script; killing it", mnt)
			syscall.Kill(st.PID, syscall.SIGKILL)
		}
	})
	r := runAs(t, nil, "unshare", "--mount", "--propagation", "private", "sh", "-c", freshExamplesScript,
		"sh", binary(t), filepath.Join(prefix, "mount.fuse.sievefs"), examples, lower, mnt)
	t.Logf("stdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	if r.code != 0 {
		t.Fatalf("script exit %d", r.code)
	}
	for _, want := range []string{
		"fresh: []",
		"check view exit 0", "check audit exit 0",
		"after check: []",
		"mount view exit 0", "umount view exit 0",
		"mount audit exit 0", "umount audit exit 0",
		"directory: 700 root",
		"log: view-audit.jsonl 600 opens=1",
		"log: audit.jsonl 600 opens=",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(r.stdout, "log: audit.jsonl 600 opens=0") {
		t.Error("audit.yaml's log recorded no open")
	}
}

// TestReadonlySlashThroughMount: readonly: ["archive/"] refuses every
// change inside archive through a real mount, to root and to an ordinary
// user (allow_other) who owns the files and could otherwise change them.
func TestReadonlySlashThroughMount(t *testing.T) {
	requireFuse(t)
	base, lower, mnt := policyDirs(t)
	// The user must reach the mountpoint: t.TempDir's directories are 0700.
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"archive", "archive/sub", "open"} {
		if err := os.Mkdir(filepath.Join(lower, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(lower, "archive/old.txt"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"archive", "archive/sub", "archive/old.txt", "open"} {
		if err := os.Chown(filepath.Join(lower, p), 1000, 1000); err != nil {
			t.Fatal(err)
		}
	}
	pf := writePolicy(t, base, "policy.yaml", "rules:\n  - readonly: [\"archive/\"]\n")
	startView(t, mnt, nil, "mount", "-o", "allow_other", "--policy", pf, lower, mnt)
	in := func(p string) string { return filepath.Join(mnt, p) }

	t.Run("Root", func(t *testing.T) {
		for _, c := range []struct {
			what string
			err  error
		}{
			{"create", os.WriteFile(in("archive/new.txt"), nil, 0o644)},
			{"create below", os.WriteFile(in("archive/sub/new.txt"), nil, 0o644)},
			{"write", appendTo(in("archive/old.txt"))},
			{"unlink", os.Remove(in("archive/old.txt"))},
			{"mkdir", os.Mkdir(in("archive/sub/d"), 0o755)},
			{"rmdir", os.Remove(in("archive/sub"))},
			{"chmod", os.Chmod(in("archive"), 0o777)},
			{"rename out", os.Rename(in("archive/old.txt"), in("open/old.txt"))},
		} {
			if !errors.Is(c.err, syscall.EROFS) {
				t.Errorf("%s in archive: %v, want EROFS", c.what, c.err)
			}
		}
		if err := os.WriteFile(in("open/root.txt"), nil, 0o644); err != nil {
			t.Errorf("create outside archive: %v", err)
		}
	})
	t.Run("User", func(t *testing.T) {
		user := &syscall.Credential{Uid: 1000, Gid: 1000}
		sh := func(script string, args ...string) result {
			return runAs(t, user, "sh", append([]string{"-c", script, "sh"}, args...)...)
		}
		for _, c := range []struct{ what, script, path string }{
			{"create", `: >"$1"`, "archive/new.txt"},
			{"create below", `: >"$1"`, "archive/sub/new.txt"},
			{"write", `echo more >>"$1"`, "archive/old.txt"},
			{"unlink", `rm -f "$1"`, "archive/old.txt"},
			{"mkdir", `mkdir "$1"`, "archive/sub/d"},
			{"rmdir", `rmdir "$1"`, "archive/sub"},
			{"chmod", `chmod 777 "$1"`, "archive"},
		} {
			r := sh(c.script, in(c.path))
			if r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") {
				t.Errorf("%s %s as uid 1000: exit %d, stderr %q; want the EROFS message", c.what, c.path, r.code, r.stderr)
			}
		}
		// The same user may change what the rule does not cover.
		if r := sh(`echo new >"$1"`, in("open/user.txt")); r.code != 0 {
			t.Errorf("create outside archive as uid 1000: exit %d, stderr %q", r.code, r.stderr)
		}
	})
	if b, err := os.ReadFile(filepath.Join(lower, "archive/old.txt")); err != nil || string(b) != "old" {
		t.Errorf("archive/old.txt in the lower tree: %q, %v", b, err)
	}
	ents, err := os.ReadDir(filepath.Join(lower, "archive"))
	if err != nil || len(ents) != 2 {
		t.Errorf("archive in the lower tree holds %v (%v), want old.txt and sub", ents, err)
	}
}

// appendTo appends a line to the file at path.
func appendTo(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString("more\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// TestBareDirectoryWarning: a glob without glob syntax that names a
// directory of the lower tree is warned about by check --lower and by
// mount, on stderr, and does not stop either.
func TestBareDirectoryWarning(t *testing.T) {
	requireFuse(t)
	base, lower, mnt := policyDirs(t)
	if err := os.Mkdir(filepath.Join(lower, "archive"), 0o755); err != nil {
		t.Fatal(err)
	}
	pf := writePolicy(t, base, "policy.yaml", "rules:\n  - hide: [b.txt]\n  - readonly: [archive, a.txt]\n")
	warning := pf + `:3:5: warning: rule 2 (readonly): "archive" matches only the directory itself (hint: write "archive/" or "archive/**" for what is inside)` + "\n"

	r := runBinary(t, "check", "--lower", lower, pf)
	if r.code != exitOK || r.stderr != warning || !strings.Contains(r.stdout, "rule 2: readonly archive, a.txt ") {
		t.Errorf("check --lower: exit %d; stdout:\n%s\nstderr:\n%s\nwant the warning:\n%s", r.code, r.stdout, r.stderr, warning)
	}
	if r := runBinary(t, "check", pf); r.code != exitOK || r.stderr != "" {
		t.Errorf("check without --lower: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	if r := runBinary(t, "check", "--lower", filepath.Join(base, "none"), pf); r.code != exitUsage || !strings.Contains(r.stderr, "--lower") {
		t.Errorf("check --lower of a missing directory: exit %d; stderr:\n%s", r.code, r.stderr)
	}

	d := startView(t, mnt, nil, "mount", "--policy", pf, lower, mnt)
	if !strings.Contains(d.Stderr.String(), warning) {
		t.Errorf("mount stderr lacks the warning:\n%s", d.Stderr)
	}
	// As the warning says: archive itself is protected, not what is in it.
	if err := os.Chmod(filepath.Join(mnt, "archive"), 0o700); !errors.Is(err, syscall.EROFS) {
		t.Errorf("chmod archive: %v, want EROFS", err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "archive", "new.txt"), nil, 0o644); err != nil {
		t.Errorf("create in archive: %v, want it to succeed", err)
	}
}
