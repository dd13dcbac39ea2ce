package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/internal/chain"
)

// full is the policy of the package documentation, every filter once.
const full = `passthrough: auto            # auto | off | require
rules:
  - hide: ["secrets/**", "**/.env"]
  - readonly: ["archive/**"]
  - deny: {ops: [unlink, rmdir, rename], paths: ["records/**"]}
  - remap: {paths: ["shared/**"], uid: 1000, gid: 1000, file_mode: "0640", dir_mode: "0750"}
  - rename: {paths: ["docs/**"], from: ".markdown", to: ".md"}
  - audit: {ops: [open, create, unlink, rename, setattr], log: "/var/log/sievefs/audit.jsonl"}
  - redact: {paths: ["photos/**"], exif: [gps]}
    unless: {uids: [0]}
`

func u32(v uint32) *uint32 { return &v }

func TestParseFull(t *testing.T) {
	p, err := Parse("full.yaml", []byte(full))
	if err != nil {
		t.Fatal(err)
	}
	if p.File != "full.yaml" || p.Passthrough != "auto" {
		t.Errorf("file %q, passthrough %q", p.File, p.Passthrough)
	}
	want := []RuleSpec{
		{Index: 1, Kind: "hide", Line: 3, Col: 5, Paths: []string{"secrets/**", "**/.env"}},
		{Index: 2, Kind: "readonly", Line: 4, Col: 5, Paths: []string{"archive/**"}},
		{Index: 3, Kind: "deny", Line: 5, Col: 5, Paths: []string{"records/**"},
			Ops: []filter.Op{filter.OpUnlink, filter.OpRmdir, filter.OpRename}, Errno: syscall.EACCES},
		{Index: 4, Kind: "remap", Line: 6, Col: 5, Paths: []string{"shared/**"},
			Uid: u32(1000), Gid: u32(1000), FileMode: u32(0o640), DirMode: u32(0o750)},
		{Index: 5, Kind: "rename", Line: 7, Col: 5, Paths: []string{"docs/**"}, From: ".markdown", To: ".md"},
		{Index: 6, Kind: "audit", Line: 8, Col: 5, Log: "/var/log/sievefs/audit.jsonl",
			Ops: []filter.Op{filter.OpOpen, filter.OpCreate, filter.OpUnlink, filter.OpRename, filter.OpSetattr}},
		{Index: 7, Kind: "redact", Line: 9, Col: 5, Paths: []string{"photos/**"}, Exif: []string{"gps"},
			Unless: &filter.Callers{Uids: []uint32{0}}},
	}
	if len(p.Rules) != len(want) {
		t.Fatalf("%d rules, want %d: %+v", len(p.Rules), len(want), p.Rules)
	}
	for i := range want {
		if !reflect.DeepEqual(p.Rules[i], want[i]) {
			t.Errorf("rule %d:\n got %+v\nwant %+v", i+1, p.Rules[i], want[i])
		}
	}
	if n := p.Rules[2].Name(); n != "3:deny" {
		t.Errorf("name %q", n)
	}
}

func TestParseVariants(t *testing.T) {
	p, err := Parse("v.yaml", []byte(`
# no passthrough key: the flag decides
rules:
  - deny:
      ops: [create, mkdir, create]
      paths: [inbox/**]
      errno: EPERM
    only: {uids: [1000, 1001], gids: [100]}
  - audit: {log: /tmp/../var/log/a.jsonl, paths: ["records/**"]}
  - remap: {paths: [x], dir_mode: "755"}
  - hide: &secret ["a/**"]
  - readonly: *secret
`))
	if err != nil {
		t.Fatal(err)
	}
	if p.Passthrough != "" {
		t.Errorf("passthrough %q, want unset", p.Passthrough)
	}
	r := p.Rules
	if !reflect.DeepEqual(r[0].Ops, []filter.Op{filter.OpCreate, filter.OpMkdir}) || r[0].Errno != syscall.EPERM ||
		!reflect.DeepEqual(r[0].Only, &filter.Callers{Uids: []uint32{1000, 1001}, Gids: []uint32{100}}) {
		t.Errorf("deny: %+v", r[0])
	}
	if r[1].Ops != nil || r[1].Log != "/var/log/a.jsonl" || !reflect.DeepEqual(r[1].Paths, []string{"records/**"}) {
		t.Errorf("audit: %+v", r[1])
	}
	if r[2].DirMode == nil || *r[2].DirMode != 0o755 || r[2].FileMode != nil || r[2].Uid != nil {
		t.Errorf("remap: %+v", r[2])
	}
	if !reflect.DeepEqual(r[4].Paths, []string{"a/**"}) {
		t.Errorf("readonly through an alias: %+v", r[4])
	}
	if p, err := Parse("empty.yaml", []byte("rules: []\n")); err != nil || len(p.Rules) != 0 {
		t.Errorf("no rules: %v, %+v", err, p)
	}
	if p, err := Parse("pt.yaml", []byte("passthrough: off\n")); err != nil || p.Passthrough != "off" {
		t.Errorf("passthrough only: %v, %+v", err, p)
	}
}

// errorCases are policies with errors, each class once, and the errors
// expected, in order, as "LINE:COL: substring". TestErrors checks them;
// FuzzPolicy starts from them.
var errorCases = []struct {
	name, src string
	want      []string
}{
	{"empty file", "", []string{"1:1: empty policy file"}},
	{"only comments", "# nothing\n", []string{"1:1: empty policy file"}},
	{"not a mapping", "- hide: [a]\n", []string{"1:1: a policy is a mapping, not a list"}},
	{"scalar document", "rules\n", []string{`1:1: a policy is a mapping, not "rules"`}},
	{"two documents", "rules: []\n---\nrules: []\n", []string{"2:1: a second YAML document"}},
	{"syntax", "rules:\n  - hide: [*.tmp]\n", []string{`2:1: YAML syntax ... quote globs that begin with *`}},
	{"unknown top key", "rules: []\nrule: []\n", []string{`2:1: top level: unknown key "rule" (hint: did you mean "rules"?`}},
	{"repeated key", "rules: []\nrules: []\n", []string{`2:1: top level: key "rules" repeated (first at line 1)`}},
	{"bad passthrough", "passthrough: on\nrules: []\n", []string{`1:14: passthrough "on": unknown mode (hint: auto, off or require)`}},
	{"rules not a list", "rules: {hide: [a]}\n", []string{"1:8: rules: want a list, not a mapping"}},
	{"rules empty", "rules:\n", []string{"1:7: rules: want a list, not empty"}},
	{"rule not a mapping", "rules:\n  - hide\n", []string{`2:5: rule 1: want a mapping, not "hide"`}},
	{"unknown rule key", "rules:\n  - hide: [a]\n    unles: {uids: [0]}\n", []string{`3:5: rule 1: unknown key "unles" (hint: did you mean "unless"?`}},
	{"unknown filter", "rules:\n  - hidden: [a]\n", []string{`2:5: rule 1: unknown key "hidden" (hint: did you mean "hide"?`}},
	{"two filters", "rules:\n  - hide: [a]\n    readonly: [b]\n", []string{"3:5: rule 1: two filters in one rule, hide and readonly"}},
	{"no filter", "rules:\n  - hide: [a]\n  - unless: {uids: [0]}\n", []string{"3:5: rule 2: no filter (hint: one of hide, readonly, deny, remap, rename, audit, redact)"}},
	{"empty rule", "rules:\n  - {}\n", []string{"2:5: rule 1: no filter"}},
	{"unknown key inside", "rules:\n  - deny: {ops: [unlink], path: [a]}\n", []string{
		`2:11: rule 1 (deny): missing "paths"`,
		`2:27: rule 1 (deny): unknown key "path" (hint: did you mean "paths"?`}},
	{"bad globs", "rules:\n  - hide: [\"/etc\", \"a/../b\", \"x[\", \"a**\"]\n", []string{
		`2:12: rule 1 (hide): bad glob "/etc": must be relative`,
		`2:20: rule 1 (hide): bad glob "a/../b"`,
		`2:30: rule 1 (hide): bad glob "x["`,
		`2:36: rule 1 (hide): bad glob "a**"`}},
	{"empty paths", "rules:\n  - readonly: []\n", []string{"2:15: rule 1 (readonly): empty list"}},
	{"paths not a list", "rules:\n  - hide: \"secrets/**\"\n", []string{`2:11: rule 1 (hide): want a list, not "secrets/**" (hint: put it in brackets: ["secrets/**"])`}},
	{"mode as number", "rules:\n  - remap: {paths: [a], file_mode: 0640}\n", []string{`2:36: rule 1 (remap): file_mode: 0640 is a YAML number ... (hint: quote it: "0640")`}},
	{"mode decimal number", "rules:\n  - remap: {paths: [a], dir_mode: 755}\n", []string{`2:35: rule 1 (remap): dir_mode: 755 is a YAML number ... quote it: "0755"`}},
	{"mode not octal", "rules:\n  - remap: {paths: [a], file_mode: \"0649\"}\n", []string{`2:36: rule 1 (remap): file_mode: "0649" is not octal`}},
	{"mode too big", "rules:\n  - remap: {paths: [a], file_mode: \"17777\"}\n", []string{`2:36: rule 1 (remap): file_mode: "17777" is more than 07777`}},
	{"remap nothing", "rules:\n  - remap: {paths: [a]}\n", []string{"2:12: rule 1 (remap): nothing to present (hint: set uid, gid, file_mode or dir_mode)"}},
	{"negative uid", "rules:\n  - remap: {paths: [a], uid: -1}\n", []string{"2:30: rule 1 (remap): uid: -1 is negative"}},
	{"non-integer gid", "rules:\n  - remap: {paths: [a], gid: 1.5}\n", []string{`2:30: rule 1 (remap): gid: want a non-negative integer, not "1.5"`}},
	{"quoted uid", "rules:\n  - remap: {paths: [a], uid: \"1000\"}\n", []string{`2:30: rule 1 (remap): uid: want a non-negative integer ... without quotes`}},
	{"uid too big", "rules:\n  - remap: {paths: [a], uid: 4294967295}\n", []string{"2:30: rule 1 (remap): uid: 4294967295 is out of range"}},
	{"condition uids", "rules:\n  - hide: [a]\n    only: {uids: [0, -5, x], gids: []}\n", []string{
		"3:22: rule 1 (hide): only: uids: -5 is negative",
		`3:26: rule 1 (hide): only: uids: want a non-negative integer, not "x"`,
		"3:36: rule 1 (hide): only: gids: empty list"}},
	{"condition empty", "rules:\n  - hide: [a]\n    unless: {}\n", []string{"3:13: rule 1 (hide): unless: no callers"}},
	{"condition key", "rules:\n  - hide: [a]\n    unless: {uid: [0]}\n", []string{`3:14: rule 1 (hide): unless: unknown key "uid" (hint: did you mean "uids"?`}},
	{"unknown op", "rules:\n  - deny: {ops: [unlnk], paths: [a]}\n", []string{`2:18: rule 1 (deny): ops: unknown operation "unlnk" (hint: did you mean "unlink"? valid: lookup,`}},
	{"unfiltered op", "rules:\n  - deny: {ops: [open, write], paths: [a]}\n", []string{`2:24: rule 1 (deny): ops: operation "write" is not filtered (hint: reads and writes are not filtered: deny open instead)`}},
	{"audit unfiltered op", "rules:\n  - audit: {ops: [read], log: /l}\n", []string{`2:19: rule 1 (audit): ops: operation "read" is not filtered (hint: reads and writes are not filtered: audit open instead)`}},
	{"empty ops", "rules:\n  - deny: {ops: [], paths: [a]}\n", []string{"2:17: rule 1 (deny): ops: empty list"}},
	{"unknown errno", "rules:\n  - deny: {ops: [unlink], paths: [a], errno: EWHAT}\n", []string{`2:46: rule 1 (deny): errno: unknown errno "EWHAT"`}},
	{"lower-case errno", "rules:\n  - deny: {ops: [unlink], paths: [a], errno: eperm}\n", []string{`2:46: rule 1 (deny): errno: unknown errno "eperm" (hint: errno names are upper case: EPERM)`}},
	{"rename with condition", "rules:\n  - hide: [a]\n  - rename: {paths: [d/**], from: .markdown, to: .md}\n    only: {uids: [1000]}\n", []string{
		"3:5: rule 2 (rename): a rename rule applies to every caller; it cannot have only"}},
	{"rename suffixes", "rules:\n  - rename: {paths: [d], from: .md, to: md}\n", []string{`2:32: rule 1 (rename): rename ".md" to "md": neither suffix may end the other`}},
	{"rename NUL", "rules:\n  - rename: {paths: [d], from: \"\\0\", to: .md}\n", []string{`2:32: rule 1 (rename): rename suffix "\x00": want a non-empty name part without / or NUL`}},
	{"rename missing", "rules:\n  - rename: {paths: [d], from: .md}\n", []string{`2:13: rule 1 (rename): missing "to"`}},
	{"audit relative log", "rules:\n  - audit: {log: audit.jsonl}\n", []string{`2:18: rule 1 (audit): log "audit.jsonl" is a relative path`}},
	{"audit no log", "rules:\n  - audit: {ops: [open]}\n", []string{`2:12: rule 1 (audit): missing "log"`}},
	{"redact field", "rules:\n  - redact: {paths: [p], exif: [gps, faces]}\n", []string{`2:38: rule 1 (redact): exif: unknown field "faces" (want gps)`}},
	{"filter not a mapping", "rules:\n  - deny: [unlink]\n", []string{"2:11: rule 1 (deny): want a mapping, not a list"}},
	{"several, sorted", "rules:\n  - hide: [\"/a\"]\n  - bogus: 1\npassthrough: sometimes\nrulez: 1\n", []string{
		`2:12: rule 1 (hide): bad glob "/a"`,
		`3:5: rule 2: unknown key "bogus"`,
		`4:14: passthrough "sometimes"`,
		`5:1: top level: unknown key "rulez"`}},
}

// TestErrors checks each class of error with its position.
func TestErrors(t *testing.T) {
	for _, c := range errorCases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(c.src))
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error %v (%T), want Errors", err, err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(c.want) {
				t.Fatalf("%d errors, want %d:\n%s", len(lines), len(c.want), err)
			}
			for i, w := range c.want {
				// The first part is the position and the start of the
				// message; more parts after " ... " are anywhere after.
				parts := strings.Split(w, " ... ")
				if !strings.HasPrefix(lines[i], "bad.yaml:"+parts[0]) {
					t.Errorf("error %d:\n  %s\nwant it to begin with\n  bad.yaml:%s", i+1, lines[i], parts[0])
				}
				for _, part := range parts[1:] {
					if !strings.Contains(lines[i], part) {
						t.Errorf("error %d:\n  %s\nlacks %q", i+1, lines[i], part)
					}
				}
			}
		})
	}
}

func TestTooManyDataRules(t *testing.T) {
	src := "rules:\n" + strings.Repeat("  - redact: {paths: [p], exif: [gps]}\n", filter.MaxDataRules+1)
	_, err := Parse("many.yaml", []byte(src))
	want := "many.yaml:10:5: rule 9: more than 8 redact rules"
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %v, want %s", err, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "p.yaml")
	if err := os.WriteFile(file, []byte("rules:\n  - hide: [\"/x\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(file)
	if err == nil || !strings.HasPrefix(err.Error(), file+":2:12: ") {
		t.Errorf("error %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestDescribe(t *testing.T) {
	p, err := Parse("full.yaml", []byte(full+`  - deny: {ops: [create], paths: ["inbox/**"], errno: EROFS}
    only: {uids: [1000], gids: [100, 101]}
    unless: {uids: [1001]}
  - audit: {log: /var/log/all.jsonl}
`))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	p.Describe(&b)
	want := `full.yaml: 9 rules, passthrough auto
rule 1: hide secrets/**, **/.env, for every caller
rule 2: readonly archive/** (changes fail with EROFS), for every caller
rule 3: deny unlink, rmdir, rename on records/** with EACCES, for every caller
rule 4: remap shared/** to uid 1000, gid 1000, file mode 0640, directory mode 0750, for every caller
rule 5: rename .markdown to .md under docs/**, for every caller
rule 6: audit open, create, unlink, rename, setattr on every path to /var/log/sievefs/audit.jsonl, for every caller
rule 7: redact gps in photos/**, for callers other than uid 0
rule 8: deny create on inbox/** with EROFS, only for uid 1000 or gids 100, 101, other than uid 1001
rule 9: audit every operation on every path to /var/log/all.jsonl, for every caller
`
	if b.String() != want {
		t.Errorf("Describe:\n%s\nwant:\n%s", b.String(), want)
	}
	p, err = Parse("none.yaml", []byte("rules:\n  - hide: [a]\n"))
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	p.Describe(&b)
	if want := "none.yaml: 1 rule, passthrough not set (the --passthrough flag decides, auto by default)\nrule 1: hide a, for every caller\n"; b.String() != want {
		t.Errorf("Describe:\n%s\nwant:\n%s", b.String(), want)
	}
}

// TestBuild builds the full example, its audit log in a temporary
// directory, and checks that the chain does what the rules say.
func TestBuild(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "audit.jsonl")
	src := strings.Replace(full, "/var/log/sievefs/audit.jsonl", log, 1)
	p, err := Parse("full.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	rules, closer, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(log)
	if err != nil {
		t.Fatalf("audit log not opened: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode %v", fi.Mode())
	}
	var names, kinds []string
	for _, r := range rules {
		names = append(names, r.Name)
		kinds = append(kinds, r.Filter.Kind())
	}
	wantNames := []string{"1:hide", "2:readonly", "3:deny", "4:remap", "5:rename", "6:audit", "7:redact"}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("rule names %q, want %q", names, wantNames)
	}
	for i, k := range kinds {
		if !strings.HasSuffix(wantNames[i], ":"+k) {
			t.Errorf("rule %s has a %s filter", wantNames[i], k)
		}
	}
	if w := rules[6].When; w.Unless == nil || !reflect.DeepEqual(w.Unless.Uids, []uint32{0}) || w.Only != nil {
		t.Errorf("redact condition %+v", w)
	}
	chain, err := chain.New(rules...)
	if err != nil {
		t.Fatal(err)
	}
	user := filter.Caller{Uid: 1000, Gid: 1000, Pid: 1}
	for _, c := range []struct {
		op   filter.Op
		path string
		want error
	}{
		{filter.OpLookup, "secrets/key", syscall.ENOENT},
		{filter.OpLookup, "src/.env", syscall.ENOENT},
		{filter.OpUnlink, "archive/2020.tar", syscall.EROFS},
		{filter.OpUnlink, "records/a", syscall.EACCES},
		{filter.OpMkdir, "records/b", nil},
		{filter.OpUnlink, "other", nil},
	} {
		r := &filter.Request{Op: c.op, Caller: user, Path: c.path, Type: syscall.S_IFREG}
		if err := chain.Pre(r); err != c.want {
			t.Errorf("%s %s: %v, want %v", c.op, c.path, err, c.want)
		}
	}
	a := filter.Attr{Mode: syscall.S_IFDIR | 0o700, Uid: 5, Gid: 5}
	chain.Attr(&filter.Request{Op: filter.OpGetattr, Caller: user}, "shared/d", &a)
	if a.Uid != 1000 || a.Gid != 1000 || a.Mode != syscall.S_IFDIR|0o750 {
		t.Errorf("remapped attributes %+v", a)
	}
	if lower, err := chain.LowerName("docs", "a.md"); err != nil || lower != "a.markdown" {
		t.Errorf("lower name of docs/a.md: %q, %v", lower, err)
	}
	chain.Post(&filter.Request{Op: filter.OpUnlink, Caller: user, Path: "x"}, nil)
	if err := closer.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if b, err := os.ReadFile(log); err != nil || !strings.Contains(string(b), `"op":"unlink","path":"x"`) {
		t.Errorf("audit log %q, %v", b, err)
	}
}

// TestBuildAuditError: a log that cannot be opened is an error at its
// rule, as FILE:LINE:COL, and what the rules before it made is removed.
func TestBuildAuditError(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Parse("a.yaml", []byte("rules:\n  - audit: {log: "+filepath.Join(dir, "new", "ok.jsonl")+"}\n"+
		"  - hide: [x]\n  - audit:\n      log: "+filepath.Join(dir, "file", "audit.jsonl")+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = p.Build()
	var es Errors
	if !errors.As(err, &es) || len(es) != 1 || es[0].Line != 4 || es[0].Col != 5 ||
		!strings.HasPrefix(es[0].Error(), "a.yaml:4:5: rule 3 (audit): audit log") ||
		!strings.Contains(es[0].Error(), filepath.Join(dir, "file", "audit.jsonl")+": not a directory") {
		t.Fatalf("Build with a log under a file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); !os.IsNotExist(err) {
		t.Errorf("the failed Build left the first rule's log directory: %v", err)
	}
}

// TestDiscard: a policy built and discarded leaves nothing behind, and
// keeps a log that was there.
func TestDiscard(t *testing.T) {
	dir := t.TempDir()
	kept := filepath.Join(dir, "kept.jsonl")
	if err := os.WriteFile(kept, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := Parse("d.yaml", []byte("rules:\n  - audit: {log: "+filepath.Join(dir, "a", "b", "new.jsonl")+"}\n"+
		"  - audit: {log: "+kept+"}\n"+
		"  - audit: {log: "+filepath.Join(dir, "a", "b", "second.jsonl")+"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	rules, closer, err := p.Build()
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 3 {
		t.Fatalf("%d rules", len(rules))
	}
	if _, err := os.Stat(filepath.Join(dir, "a", "b", "new.jsonl")); err != nil {
		t.Fatalf("Build did not make the log: %v", err)
	}
	Discard(closer)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "kept.jsonl" {
		t.Errorf("after Discard the directory holds %v, want only kept.jsonl", ents)
	}
}

// TestWarnings: a glob without glob syntax that names a directory is
// warned about at its rule; other globs, and names of files, are not.
func TestWarnings(t *testing.T) {
	p, err := Parse("w.yaml", []byte(`rules:
  - hide: ["secrets/**", archive]
  - readonly: ["archive/", "archive/**", "a/b", "file", "*"]
  - rename: {paths: [docs], from: .markdown, to: .md}
  - audit: {log: /var/log/a.jsonl}
`))
	if err != nil {
		t.Fatal(err)
	}
	dirs := map[string]bool{"secrets": true, "archive": true, "a/b": true, "docs": true, "*": true}
	var asked []string
	ws := p.Warnings(func(path string) bool {
		asked = append(asked, path)
		return dirs[path]
	})
	want := `w.yaml:2:5: warning: rule 1 (hide): "archive" matches only the directory itself (hint: write "archive/" or "archive/**" for what is inside)
w.yaml:3:5: warning: rule 2 (readonly): "a/b" matches only the directory itself (hint: write "a/b/" or "a/b/**" for what is inside)
w.yaml:4:5: warning: rule 3 (rename): "docs" matches only the directory itself (hint: write "docs/" or "docs/**" for what is inside)`
	if ws.Error() != want {
		t.Errorf("warnings:\n%v\nwant:\n%s", ws, want)
	}
	if !reflect.DeepEqual(asked, []string{"archive", "a/b", "file", "docs"}) {
		t.Errorf("asked about %q, want only the globs without glob syntax", asked)
	}
}

func TestBuildEmpty(t *testing.T) {
	p, err := Parse("e.yaml", []byte("rules: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	rules, closer, err := p.Build()
	if err != nil || rules == nil || len(rules) != 0 {
		t.Fatalf("rules %v, %v", rules, err)
	}
	if err := closer.Close(); err != nil {
		t.Error(err)
	}
}

// TestDescribeQuotes checks that values which are not one line of printable
// text are quoted in the description, so that each rule stays on one line,
// and that errors quote them too, one line each.
func TestDescribeQuotes(t *testing.T) {
	p, err := Parse("q.yaml", []byte(`rules:
  - hide: ["a\nb", "c d", "é"]
  - audit: {log: "/var/log/a\tb"}
`))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	p.Describe(&b)
	want := `q.yaml: 2 rules, passthrough not set (the --passthrough flag decides, auto by default)
rule 1: hide "a\nb", c d, é, for every caller
rule 2: audit every operation on every path to "/var/log/a\tb", for every caller
`
	if b.String() != want {
		t.Errorf("Describe:\n%s\nwant:\n%s", b.String(), want)
	}
	_, err = Parse("q.yaml", []byte("rules:\n  - hide: |\n      a\n      b\n  - remap: {paths: [a], uid: !!int \"1\\n2\"}\n"))
	if want := "q.yaml:2:11: rule 1 (hide): want a list, not \"a\\nb\\n\" (hint: put it in brackets: [\"a\\nb\\n\"])\n" +
		"q.yaml:5:30: rule 2 (remap): uid: \"1\\n2\" is out of range (hint: a uid or gid is a number from 0 to 4294967294)"; err == nil || err.Error() != want {
		t.Errorf("errors:\n%v\nwant:\n%s", err, want)
	}
}
