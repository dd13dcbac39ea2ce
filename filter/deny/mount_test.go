package deny_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/filter/deny"
	"github.com/sievefs/sievefs/internal/fusetest"
)

// TestFilterDeny checks that the listed operations fail with the rule's
// errno (EACCES by default, EPERM configured) on the source or the
// destination, that directory renames out of reach fail with EXDEV, and
// that unlisted operations work.
func TestFilterDeny(t *testing.T) {
	low := fusetest.NewLower(t)
	fusetest.LayTree(t, low, "var/logs/app.log", "var/logs/empty/", "var/other", "cfg/x", "cfg/y", "pub")
	if err := unix.Setxattr(filepath.Join(low, "cfg/x"), "user.sievefs", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	chain := fusetest.RulesOf(t,
		filter.Rule{Name: "logs", Filter: deny.New([]filter.Op{filter.OpUnlink, filter.OpRename, filter.OpLink}, fusetest.Globs("var/logs/**"), 0)},
		filter.Rule{Name: "cfg", Filter: deny.New([]filter.Op{filter.OpOpen, filter.OpSetattr, filter.OpGetxattr}, fusetest.Globs("cfg/**"), syscall.EPERM)},
	)
	v := fusetest.MountFiltered(t, low, chain, false)
	p := v.Path

	t.Run("Listed", func(t *testing.T) {
		fusetest.WantErr(t, "unlink var/logs/app.log", os.Remove(p("var/logs/app.log")), syscall.EACCES)
		fusetest.WantErr(t, "rename var/logs/app.log within", os.Rename(p("var/logs/app.log"), p("var/logs/b")), syscall.EACCES)
		fusetest.WantErr(t, "rename var/logs/app.log out", os.Rename(p("var/logs/app.log"), p("app.log")), syscall.EACCES)
		fusetest.WantErr(t, "rename pub in", os.Rename(p("pub"), p("var/logs/pub")), syscall.EACCES)
		fusetest.WantErr(t, "rename var/logs", os.Rename(p("var/logs"), p("var/logs2")), syscall.EACCES)
		fusetest.WantErr(t, "link from var/logs/app.log", os.Link(p("var/logs/app.log"), p("var/logs/l")), syscall.EACCES)
		fusetest.WantErr(t, "link pub in", os.Link(p("pub"), p("var/logs/pub")), syscall.EACCES)
		// Moving var would carry var/logs out of the rule's reach.
		fusetest.WantErr(t, "rename var", os.Rename(p("var"), p("var2")), syscall.EXDEV)

		for _, flags := range []int{os.O_RDONLY, os.O_WRONLY, os.O_RDWR | os.O_APPEND} {
			f, err := os.OpenFile(p("cfg/x"), flags, 0)
			if err == nil {
				f.Close()
			}
			fusetest.WantErr(t, "open cfg/x", err, syscall.EPERM)
		}
		fusetest.WantErr(t, "chmod cfg/x", os.Chmod(p("cfg/x"), 0o600), syscall.EPERM)
		fusetest.WantErr(t, "truncate cfg/x", os.Truncate(p("cfg/x"), 0), syscall.EPERM)
		fusetest.WantErr(t, "chown cfg", os.Chown(p("cfg"), 1, 1), syscall.EPERM)
		_, err := unix.Getxattr(p("cfg/x"), "user.sievefs", make([]byte, 16))
		fusetest.WantErr(t, "getxattr cfg/x", err, syscall.EPERM)
		// Creating a file opens it: create is not open, so it works, and
		// opening it again does not.
		f, err := os.OpenFile(p("cfg/new"), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			t.Errorf("create cfg/new (create is not listed): %v", err)
		} else {
			f.Close()
		}
		_, err = os.ReadFile(p("cfg/new"))
		fusetest.WantErr(t, "open cfg/new", err, syscall.EPERM)
	})

	t.Run("Unlisted", func(t *testing.T) {
		f, err := os.OpenFile(p("var/logs/app.log"), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatalf("open var/logs/app.log for appending: %v", err)
		}
		if _, err := f.WriteString("+line"); err != nil {
			t.Error(err)
		}
		f.Close()
		if b, _ := os.ReadFile(filepath.Join(low, "var/logs/app.log")); string(b) != "var/logs/app.log+line" {
			t.Errorf("lower app.log: %q", b)
		}
		if err := os.WriteFile(p("var/logs/new"), []byte("n"), 0o644); err != nil {
			t.Errorf("create var/logs/new: %v", err)
		}
		if err := os.Chmod(p("var/logs/app.log"), 0o600); err != nil {
			t.Errorf("chmod var/logs/app.log: %v", err)
		}
		if err := os.Remove(p("var/logs/empty")); err != nil {
			t.Errorf("rmdir var/logs/empty: %v", err)
		}
		if err := os.Rename(p("var/other"), p("var/other2")); err != nil {
			t.Errorf("rename var/other: %v", err)
		}
		if names := fusetest.ListDir(t, p("cfg")); len(names) != 3 {
			t.Errorf("ls cfg: %v", names)
		}
		if fi, err := os.Stat(p("cfg/x")); err != nil || fi.Size() != 5 {
			t.Errorf("stat cfg/x: %v %v", fi, err)
		}
		if n, err := unix.Listxattr(p("cfg/x"), make([]byte, 64)); err != nil || n == 0 {
			t.Errorf("listxattr cfg/x: %d %v", n, err)
		}
		if err := os.Remove(p("cfg/y")); err != nil {
			t.Errorf("unlink cfg/y: %v", err)
		}
		if _, err := os.Lstat(filepath.Join(low, "cfg/y")); !os.IsNotExist(err) {
			t.Errorf("lower cfg/y after unlink: %v", err)
		}
	})

	if b, err := os.ReadFile(filepath.Join(low, "cfg/x")); err != nil || string(b) != "cfg/x" {
		t.Errorf("lower cfg/x: %q %v", b, err)
	}
	if d := fusetest.RuleDecisions(v, "logs"); d[filter.DecisionError] < 7 {
		t.Errorf("rule logs decisions %v, want at least 7 errors", d)
	}
	if d := fusetest.RuleDecisions(v, "cfg"); d[filter.DecisionError] < 7 {
		t.Errorf("rule cfg decisions %v, want at least 7 errors", d)
	}
}
