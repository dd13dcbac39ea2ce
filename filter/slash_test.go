package filter_test

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/filter/audit"
	"github.com/sievefs/sievefs/filter/deny"
	"github.com/sievefs/sievefs/filter/hide"
	"github.com/sievefs/sievefs/filter/readonly"
	"github.com/sievefs/sievefs/filter/redact"
	"github.com/sievefs/sievefs/filter/remap"
	"github.com/sievefs/sievefs/filter/rename"
)

// TestTrailingSlashEveryFilter: a glob "d/" governs d itself and
// everything beneath it, and nothing else, in every built-in filter that
// takes globs, whether d is a directory or a file.
func TestTrailingSlashEveryFilter(t *testing.T) {
	pats, err := filter.ParsePatterns([]string{"d/"})
	if err != nil {
		t.Fatal(err)
	}
	user := filter.Caller{Uid: 1000, Gid: 1000, Pid: 1}
	req := func(op filter.Op, path string, typ uint32) *filter.Request {
		return &filter.Request{Op: op, Caller: user, Path: path, Type: typ}
	}
	uid := uint32(4242)
	rm := remap.New(remap.Config{Paths: pats, Uid: &uid})
	rn, err := rename.New(pats, ".markdown", ".md")
	if err != nil {
		t.Fatal(err)
	}
	rd, err := redact.New(pats, []string{"gps"})
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "audit.jsonl")
	au, err := audit.New(audit.Config{Ops: []filter.Op{filter.OpUnlink}, Paths: pats, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	defer au.Close()

	// acts reports whether the filter acts on the node at path, of type
	// typ, as a user meets it.
	for _, c := range []struct {
		kind string
		acts func(path string, typ uint32) bool
	}{
		{"hide", func(p string, typ uint32) bool {
			return hide.New(pats).Pre(req(filter.OpLookup, p, 0)) == syscall.ENOENT
		}},
		{"readonly", func(p string, typ uint32) bool {
			op := filter.OpUnlink
			if typ == syscall.S_IFDIR {
				op = filter.OpRmdir
			}
			return readonly.New(pats).Pre(req(op, p, typ)) == syscall.EROFS
		}},
		{"deny", func(p string, typ uint32) bool {
			return deny.New([]filter.Op{filter.OpSetattr}, pats, syscall.EPERM).Pre(req(filter.OpSetattr, p, typ)) == syscall.EPERM
		}},
		{"remap", func(p string, typ uint32) bool {
			a := filter.Attr{Mode: typ | 0o644, Uid: 1}
			rm.Attr(req(filter.OpGetattr, p, typ), p, &a)
			return a.Uid == uid
		}},
		{"rename", func(p string, typ uint32) bool {
			// Whether a name "x.md" in the view directory p maps to x.markdown.
			lower, err := rn.LowerName(p, "x.md")
			return err == nil && lower == "x.markdown"
		}},
		{"audit", func(p string, typ uint32) bool {
			before, _ := os.ReadFile(log)
			au.Post(req(filter.OpUnlink, p, typ), nil)
			after, _ := os.ReadFile(log)
			return bytes.Count(after, []byte("\n")) > bytes.Count(before, []byte("\n"))
		}},
		{"redact", func(p string, typ uint32) bool {
			return rd.Claims(req(filter.OpOpen, p, syscall.S_IFREG))
		}},
	} {
		for _, typ := range []uint32{syscall.S_IFDIR, syscall.S_IFREG} {
			for _, p := range []string{"d", "d/x", "d/x/y"} {
				if c.kind == "rename" && p == "d" {
					continue // the name d itself is not mapped: it ends in neither suffix
				}
				if !c.acts(p, typ) {
					t.Errorf("%s [d/]: does not act on %q (type %o)", c.kind, p, typ)
				}
			}
			for _, p := range []string{"dx", "dx/y", "e/d", "e/d/x", "e"} {
				if c.acts(p, typ) {
					t.Errorf("%s [d/]: acts on %q (type %o)", c.kind, p, typ)
				}
			}
		}
	}
}
