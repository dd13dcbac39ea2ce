package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const (
	pageSource = "../../man/sievefs.8.md"
	page       = "../../man/sievefs.8"
)

// TestManPageUpToDate checks that man/sievefs.8 is what mangen makes of
// man/sievefs.8.md and docs/usage.md; SIEVEFS_UPDATE_DOCS=1 rewrites it.
func TestManPageUpToDate(t *testing.T) {
	want, err := render(pageSource)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(got, want) {
		return
	}
	if os.Getenv("SIEVEFS_UPDATE_DOCS") != "" {
		if err := os.WriteFile(page, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("man/sievefs.8 is not what docs/usage.md makes; run go generate ./man (or SIEVEFS_UPDATE_DOCS=1 go test -run TestManPageUpToDate ./internal/mangen)")
}

// TestManPageShape checks the page as man(1) reads it: a title, a NAME
// section whatis can parse, a section for each of those of the sources,
// only the requests of the man macros, no Markdown left over, and ASCII
// only. With groff installed, groff formats it without a warning.
func TestManPageShape(t *testing.T) {
	roff, err := render(pageSource)
	if err != nil {
		t.Fatal(err)
	}
	text := string(roff)
	if !strings.Contains(text, "\n.TH SIEVEFS 8 ") {
		t.Error("no .TH SIEVEFS 8 line")
	}
	if !strings.Contains(text, "\n.SH NAME\nsievefs, mount.fuse.sievefs \\- ") {
		t.Error(`NAME is not "sievefs, mount.fuse.sievefs \- …"`)
	}
	var headings int
	for _, src := range []string{pageSource, "../../docs/usage.md"} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		headings += len(regexp.MustCompile(`(?m)^##+ `).FindAll(data, -1))
	}
	if n := len(regexp.MustCompile(`(?m)^\.S[HS] `).FindAllString(text, -1)); n != headings {
		t.Errorf("%d sections, want the %d headings of the sources", n, headings)
	}
	requests := map[string]bool{".TH": true, ".SH": true, ".SS": true, ".PP": true, ".TP": true, ".br": true,
		".EX": true, ".EE": true, ".nh": true, ".RS": true, ".RE": true, ".IP": true, `'\"`: true}
	for i, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'") {
			if req, _, _ := strings.Cut(line, " "); !requests[req] {
				t.Errorf("line %d: request %q is not one of the man macros used", i+1, req)
			}
		}
		for _, md := range []string{"](", "<!--", "`", "\\\\|"} {
			if strings.Contains(line, md) {
				t.Errorf("line %d: Markdown left over (%q): %s", i+1, md, line)
			}
		}
	}
	for i, c := range roff {
		if c >= 0x80 {
			t.Fatalf("byte %d is not ASCII", i)
		}
	}
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Log("groff not installed: the page is not formatted")
		return
	}
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = bytes.NewReader(roff)
	out, err := cmd.CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("groff: %v\n%s", err, out)
	}
}

// TestRender checks the include directive and the links a manual page
// cannot follow, on a small module of its own.
func TestRender(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"go.mod": "module example\n",
		"man/x.8.md": "# X 8\n\n## NAME\n\nx - a test\n\n<!-- include: ../docs/a.md -->\n\n" +
			"## SEE ALSO\n\n[site](https://example.org/)\n",
		"docs/a.md": "# A\n\nIntroduction, left out.\n\n## Usage\n\n" +
			"See [Caching](b.md#caching), [b.md](b.md), [below](#more), [`contrib/u.service`](../contrib/u.service).\n\n" +
			"| Word | Default | Why |\n|---|---|---|\n| `a\\|b` | `1` | because |\n| `c` | | plain |\n\n## More\n\nEnd.\n",
	}
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := render(filepath.Join(root, "man/x.8.md"))
	if err != nil {
		t.Fatal(err)
	}
	got := string(out)
	for _, want := range []string{
		".SH Usage\nSee Caching (docs/b.md), docs/b.md, below, \\fBcontrib/u.service\\fR\\&.\n",
		".TP\n\\fBa|b\\fR\nDefault: \\fB1\\fR.\n.br\nbecause\n",
		".TP\n\\fBc\\fR\nplain\n",
		".SH More\nEnd.\n",
		".SH SEE ALSO\nsite\n\\[la]https://example.org/\\[ra]",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("page lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Introduction") {
		t.Errorf("the included file's introduction is in the page:\n%s", got)
	}
	if err := os.WriteFile(filepath.Join(root, "man/y.8.md"), []byte("# Y 8\n\n<!-- include: ../docs/missing.md -->\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := render(filepath.Join(root, "man/y.8.md")); err == nil {
		t.Error("a missing include made a page")
	}
}
