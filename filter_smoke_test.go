package sievefs_test

import (
	"errors"
	"os"
	"sort"
	"syscall"
	"testing"

	"github.com/sievefs/sievefs"
	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/filter/hide"
	"github.com/sievefs/sievefs/filter/readonly"
	"github.com/sievefs/sievefs/filter/remap"
	"github.com/sievefs/sievefs/filter/rename"
	"github.com/sievefs/sievefs/internal/fusetest"
)

func TestFilterSmoke(t *testing.T) {
	low := t.TempDir()
	for _, d := range []string{"secrets", "archive", "docs", "shared"} {
		os.Mkdir(low+"/"+d, 0o755)
	}
	for _, f := range []string{"secrets/key", "archive/old", "docs/a.markdown", "docs/b.md", "shared/s", "pub", ".env"} {
		os.WriteFile(low+"/"+f, []byte("x"), 0o600)
	}
	uid := uint32(1000)
	mode := uint32(0o640)
	ren, _ := rename.New(filter.Patterns{filter.MustPattern("docs/**")}, ".markdown", ".md")
	chain, err := filter.NewChain(
		filter.Rule{Filter: hide.New(filter.Patterns{filter.MustPattern("secrets/**"), filter.MustPattern("**/.env")})},
		filter.Rule{Filter: readonly.New(filter.Patterns{filter.MustPattern("archive/**")})},
		filter.Rule{Filter: remap.New(remap.Config{Paths: filter.Patterns{filter.MustPattern("shared/**")}, Uid: &uid, FileMode: &mode})},
		filter.Rule{Filter: ren},
	)
	if err != nil {
		t.Fatal(err)
	}
	v := fusetest.MountLower(t, low, sievefs.Options{Filters: chain})
	names := func(dir string) []string {
		es, err := os.ReadDir(v.Path(dir))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range es {
			out = append(out, e.Name())
		}
		sort.Strings(out)
		return out
	}
	t.Log(names("."), names("docs"))
	if _, err := os.Stat(v.Path("secrets")); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("stat secrets: %v", err)
	}
	if err := os.WriteFile(v.Path("archive/old"), []byte("y"), 0); !errors.Is(err, syscall.EROFS) {
		t.Errorf("write archive/old: %v", err)
	}
	if b, err := os.ReadFile(v.Path("docs/a.md")); err != nil || string(b) != "x" {
		t.Errorf("read docs/a.md: %q %v", b, err)
	}
	st, err := os.Stat(v.Path("shared/s"))
	if err != nil || st.Sys().(*syscall.Stat_t).Uid != 1000 || st.Mode().Perm() != 0o640 {
		t.Errorf("shared/s: %v %v", st, err)
	}
	if err := os.WriteFile(v.Path("docs/c.md"), []byte("z"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(low + "/docs/c.markdown"); err != nil {
		t.Errorf("lower c.markdown: %v", err)
	}
	if err := os.Rename(v.Path("pub"), v.Path("secrets2")); err != nil {
		t.Error(err)
	}
	if err := os.Rename(v.Path("secrets2"), v.Path("secrets")); !errors.Is(err, syscall.EACCES) {
		t.Errorf("rename onto hidden: %v", err)
	}
	t.Logf("%+v", v.Mount.Status().Filters)
}
