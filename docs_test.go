package sievefs_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/sievefs/sievefs/filter"
)

// opTable renders filter.Op.Info as the Markdown table of docs/security.md.
func opTable() string {
	var b strings.Builder
	b.WriteString("| operation | filter families | a pre-filter may answer with | names | why pre- and post-filters need not see it |\n")
	b.WriteString("|---|---|---|---|---|\n")
	fams := []struct {
		f    filter.Families
		name string
	}{{filter.FamilyPre, "pre"}, {filter.FamilyPost, "post"}, {filter.FamilyAttr, "attr"}, {filter.FamilyDir, "dir"}, {filter.FamilyNames, "names"}, {filter.FamilyData, "data"}}
	for o := range filter.NumOps {
		info := o.Info()
		var fs []string
		for _, f := range fams {
			if info.Families&f.f != 0 {
				fs = append(fs, f.name)
			}
		}
		answer, why := info.Answer, info.Why
		switch {
		case !info.Filtered():
			answer = "-"
		case answer == "":
			answer = "no (EIO)"
		case answer == "-":
			answer = "its result"
		}
		if why == "" {
			why = "-"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", o, strings.Join(fs, ", "), answer, info.Node, why)
	}
	return b.String()
}

// TestSecurityDocOpTable checks that the operation table of
// docs/security.md is the one the code has; SIEVEFS_UPDATE_DOCS=1 writes it.
func TestSecurityDocOpTable(t *testing.T) {
	const path = "docs/security.md"
	const begin = "<!-- op table: made by TestSecurityDocOpTable; SIEVEFS_UPDATE_DOCS=1 rewrites it -->\n"
	const end = "<!-- end of op table -->"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the op table markers", path)
	}
	want := doc[:i+len(begin)] + opTable() + doc[j:]
	if doc == want {
		return
	}
	if os.Getenv("SIEVEFS_UPDATE_DOCS") != "" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("the op table of %s differs from filter.Op.Info; run SIEVEFS_UPDATE_DOCS=1 go test -run TestSecurityDocOpTable .", path)
}
