package rename_test

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/filter/hide"
	"github.com/sievefs/sievefs/filter/rename"
	"github.com/sievefs/sievefs/internal/fusetest"
)

// TestFilterRename checks that lookups, listings, creation, symlinks,
// links and renames use mapped names with the lower names mapped back,
// symlink targets unchanged, and the collision rules.
func TestFilterRename(t *testing.T) {
	low := fusetest.NewLower(t)
	fusetest.LayTree(t, low, "docs/a.markdown", "docs/x.md", "docs/plain.txt", "docs/sub/deep.markdown", "top.markdown", "top.md")
	ren, err := rename.New(fusetest.Globs("docs/**"), ".markdown", ".md")
	if err != nil {
		t.Fatal(err)
	}
	v := fusetest.MountFiltered(t, low, fusetest.RulesOf(t, filter.Rule{Name: "ren", Filter: ren}), false)
	p := v.Path
	lowerHas := func(name string) bool {
		_, err := os.Lstat(filepath.Join(low, name))
		return err == nil
	}

	t.Run("Lookup", func(t *testing.T) {
		for name, want := range map[string]string{"docs/a.md": "docs/a.markdown", "docs/sub/deep.md": "docs/sub/deep.markdown", "docs/plain.txt": "docs/plain.txt"} {
			if b, err := os.ReadFile(p(name)); err != nil || string(b) != want {
				t.Errorf("read %s: %q %v, want the lower %s", name, b, err, want)
			}
		}
		// Lower names the view cannot hold: a .markdown name under the
		// paths does not exist in the view; a lower .md there is not shown.
		for _, name := range []string{"docs/a.markdown", "docs/x.md", "docs/sub/deep.markdown", "docs/y.markdown"} {
			_, err := os.Stat(p(name))
			fusetest.WantErr(t, "stat "+name, err, syscall.ENOENT)
		}
		// Outside the paths nothing is mapped.
		for _, name := range []string{"top.markdown", "top.md"} {
			if b, err := os.ReadFile(p(name)); err != nil || string(b) != name {
				t.Errorf("read %s: %q %v", name, b, err)
			}
		}
	})

	t.Run("Readdir", func(t *testing.T) {
		for dir, want := range map[string]string{
			"docs":     "[a.md plain.txt sub]",
			"docs/sub": "[deep.md]",
			".":        "[docs top.markdown top.md]",
		} {
			if got := fmt.Sprint(fusetest.ListDir(t, p(dir))); got != want {
				t.Errorf("ls -l %s: %s, want %s", dir, got, want)
			}
			if got := fmt.Sprint(fusetest.GetdentsSmall(t, p(dir))); got != want {
				t.Errorf("getdents %s: %s, want %s", dir, got, want)
			}
		}
	})

	t.Run("Create", func(t *testing.T) {
		fusetest.WriteFile(t, p("docs/n.md"), []byte("new"))
		if b, err := os.ReadFile(filepath.Join(low, "docs/n.markdown")); err != nil || string(b) != "new" {
			t.Errorf("lower docs/n.markdown: %q %v", b, err)
		}
		if lowerHas("docs/n.md") {
			t.Error("lower docs/n.md exists")
		}
		if err := os.Mkdir(p("docs/d.md"), 0o755); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(filepath.Join(low, "docs/d.markdown")); err != nil || !fi.IsDir() {
			t.Errorf("lower docs/d.markdown: %v", err)
		}
		if err := unix.Mknod(p("docs/fifo.md"), unix.S_IFIFO|0o644, 0); err != nil {
			t.Fatal(err)
		}
		if !lowerHas("docs/fifo.markdown") {
			t.Error("lower docs/fifo.markdown missing")
		}
		// A view name ending in .markdown under the paths cannot exist.
		fusetest.WantErr(t, "create docs/y.markdown", os.WriteFile(p("docs/y.markdown"), []byte("y"), 0o644), syscall.ENOENT)
		fusetest.WantErr(t, "mkdir docs/z.markdown", os.Mkdir(p("docs/z.markdown"), 0o755), syscall.ENOENT)
		fusetest.WantErr(t, "symlink docs/s.markdown", os.Symlink("a.md", p("docs/s.markdown")), syscall.ENOENT)
		for _, name := range []string{"docs/y.markdown", "docs/z.markdown", "docs/s.markdown"} {
			if lowerHas(name) {
				t.Errorf("lower %s exists", name)
			}
		}
		if got := fmt.Sprint(fusetest.ListDir(t, p("docs"))); got != "[a.md d.md fifo.md n.md plain.txt sub]" {
			t.Errorf("ls docs after creating: %s", got)
		}
	})

	t.Run("Symlink", func(t *testing.T) {
		if err := os.Symlink("a.md", p("docs/s.md")); err != nil {
			t.Fatal(err)
		}
		if target, err := os.Readlink(filepath.Join(low, "docs/s.markdown")); err != nil || target != "a.md" {
			t.Errorf("lower docs/s.markdown: target %q %v, want a.md unchanged", target, err)
		}
		if target, err := os.Readlink(p("docs/s.md")); err != nil || target != "a.md" {
			t.Errorf("readlink docs/s.md: %q %v", target, err)
		}
		// The target resolves in the view.
		if b, err := os.ReadFile(p("docs/s.md")); err != nil || string(b) != "docs/a.markdown" {
			t.Errorf("read through docs/s.md: %q %v", b, err)
		}
	})

	t.Run("Link", func(t *testing.T) {
		if err := os.Link(p("docs/a.md"), p("docs/b.md")); err != nil {
			t.Fatal(err)
		}
		var a, b syscall.Stat_t
		if err := syscall.Stat(filepath.Join(low, "docs/a.markdown"), &a); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Stat(filepath.Join(low, "docs/b.markdown"), &b); err != nil {
			t.Fatalf("lower docs/b.markdown: %v", err)
		}
		if a.Ino != b.Ino || a.Nlink != 2 {
			t.Errorf("lower a.markdown and b.markdown: inodes %d %d, nlink %d", a.Ino, b.Ino, a.Nlink)
		}
		fusetest.WantErr(t, "link onto docs/c.markdown", os.Link(p("docs/a.md"), p("docs/c.markdown")), syscall.ENOENT)
		if err := os.Remove(p("docs/b.md")); err != nil {
			t.Fatal(err)
		}
		if lowerHas("docs/b.markdown") {
			t.Error("lower docs/b.markdown still there after unlinking docs/b.md")
		}
	})

	t.Run("Rename", func(t *testing.T) {
		if err := os.Rename(p("docs/n.md"), p("docs/m.md")); err != nil {
			t.Fatal(err)
		}
		if !lowerHas("docs/m.markdown") || lowerHas("docs/n.markdown") {
			t.Error("rename docs/n.md docs/m.md: lower docs/m.markdown missing or docs/n.markdown left")
		}
		if err := os.Rename(p("docs/plain.txt"), p("docs/p.md")); err != nil {
			t.Fatal(err)
		}
		if !lowerHas("docs/p.markdown") {
			t.Error("rename docs/plain.txt docs/p.md: lower docs/p.markdown missing")
		}
		// Out of the paths the name is the view's.
		if err := os.Rename(p("docs/m.md"), p("m.md")); err != nil {
			t.Fatal(err)
		}
		if !lowerHas("m.md") || lowerHas("docs/m.markdown") {
			t.Error("rename docs/m.md m.md: lower m.md missing or docs/m.markdown left")
		}
		// And back in.
		if err := os.Rename(p("m.md"), p("docs/sub/back.md")); err != nil {
			t.Fatal(err)
		}
		if !lowerHas("docs/sub/back.markdown") {
			t.Error("rename m.md docs/sub/back.md: lower docs/sub/back.markdown missing")
		}
		fusetest.WantErr(t, "rename onto docs/q.markdown", os.Rename(p("docs/p.md"), p("docs/q.markdown")), syscall.ENOENT)
		fusetest.WantErr(t, "rename docs/x.md (a hidden lower .md)", os.Rename(p("docs/x.md"), p("docs/xx.md")), syscall.ENOENT)
		if b, err := os.ReadFile(filepath.Join(low, "docs/x.md")); err != nil || string(b) != "docs/x.md" {
			t.Errorf("lower docs/x.md: %q %v", b, err)
		}
		if got := fmt.Sprint(fusetest.ListDir(t, p("docs/sub"))); got != "[back.md deep.md]" {
			t.Errorf("ls docs/sub: %s", got)
		}
	})

	if d := fusetest.RuleDecisions(v, "ren"); d[filter.DecisionRename] == 0 || d[filter.DecisionDrop] == 0 {
		t.Errorf("rule ren decisions %v, want renames and drops", d)
	}
}

// TestFilterRenameThenHide checks that rules see view names: a hide rule
// on the mapped name hides the lower file under both names, whatever the
// order of the rules.
func TestFilterRenameThenHide(t *testing.T) {
	low := fusetest.NewLower(t)
	fusetest.LayTree(t, low, "docs/s.markdown", "docs/ok.markdown")
	ren, err := rename.New(fusetest.Globs("docs/**"), ".markdown", ".md")
	if err != nil {
		t.Fatal(err)
	}
	hideS := hide.New(fusetest.Globs("docs/s.md"))
	for _, order := range [][]filter.Rule{{{Filter: ren}, {Filter: hideS}}, {{Filter: hideS}, {Filter: ren}}} {
		v := fusetest.MountFiltered(t, low, fusetest.RulesOf(t, order...), false)
		for _, name := range []string{"docs/s.md", "docs/s.markdown"} {
			_, err := os.Stat(v.Path(name))
			fusetest.WantErr(t, "stat "+name, err, syscall.ENOENT)
		}
		if got := fmt.Sprint(fusetest.ListDir(t, v.Path("docs"))); got != "[ok.md]" {
			t.Errorf("ls docs: %s, want [ok.md]", got)
		}
		fusetest.WantErr(t, "create docs/s.md", os.WriteFile(v.Path("docs/s.md"), nil, 0o644), syscall.EACCES)
	}
}
