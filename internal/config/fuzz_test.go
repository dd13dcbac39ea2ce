package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/sievefs/sievefs/filter"
)

// fuzzFile is the name the policies of FuzzPolicy are parsed as.
const fuzzFile = "fuzz.yaml"

// FuzzPolicy parses arbitrary bytes as a policy file. Parse must never
// panic, and must return either a policy or an Errors whose every entry has
// a position inside the input; a policy must describe itself as `sievefs
// check` prints it (a header and one line per rule), build into a filter
// chain, and survive a round trip through YAML written back from it.
func FuzzPolicy(f *testing.F) {
	seeds, err := filepath.Glob("../../examples/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, "../../bench/policy10.yaml")
	for _, file := range seeds {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(full))
	for _, c := range errorCases {
		f.Add([]byte(c.src))
	}
	logDir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(fuzzFile, data)
		if err != nil {
			if p != nil {
				t.Fatalf("Parse returned a policy and an error: %v", err)
			}
			checkErrors(t, data, err)
			return
		}
		if p == nil || p.File != fuzzFile {
			t.Fatalf("Parse returned policy %+v and no error", p)
		}
		checkRules(t, data, p)
		checkDescribe(t, p)
		checkBuild(t, p, filepath.Join(logDir, "audit.jsonl"))
		checkRoundTrip(t, p)
	})
}

// errLine is one line of an Errors message: FILE:LINE:COL: message.
var errLine = regexp.MustCompile(`^` + regexp.QuoteMeta(fuzzFile) + `:([0-9]+):([0-9]+): \S`)

// checkErrors checks that err is a non-empty Errors, sorted by position,
// each entry at a position inside data, and that its message has one line
// per entry, each beginning with that position.
func checkErrors(t *testing.T, data []byte, err error) {
	t.Helper()
	var es Errors
	if !errors.As(err, &es) || len(es) == 0 {
		t.Fatalf("error %q (%T), want a non-empty Errors", err, err)
	}
	for i, e := range es {
		if e.File != fuzzFile || e.Msg == "" {
			t.Errorf("error %d: file %q, message %q", i+1, e.File, e.Msg)
		}
		checkPosition(t, data, fmt.Sprintf("error %d (%s)", i+1, e.Msg), e.Line, e.Col)
		if i > 0 && (e.Line < es[i-1].Line || e.Line == es[i-1].Line && e.Col < es[i-1].Col) {
			t.Errorf("errors out of order: %d:%d after %d:%d", e.Line, e.Col, es[i-1].Line, es[i-1].Col)
		}
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(es) {
		t.Fatalf("%d errors in %d lines:\n%s", len(es), len(lines), err)
	}
	for i, line := range lines {
		m := errLine.FindStringSubmatch(line)
		if m == nil || m[1] != strconv.Itoa(es[i].Line) || m[2] != strconv.Itoa(es[i].Col) {
			t.Errorf("error line %d does not begin with %s:%d:%d: %q", i+1, fuzzFile, es[i].Line, es[i].Col, line)
		}
	}
}

// checkPosition checks that line:col (1-based, col in characters) is inside
// data, or just past the end of a line.
func checkPosition(t *testing.T, data []byte, what string, line, col int) {
	t.Helper()
	lines := splitLines(data)
	if line < 1 || line > len(lines) {
		t.Errorf("%s: line %d, the input has %d lines", what, line, len(lines))
		return
	}
	// The character count is of the text as the parser reads it; bytes
	// that are not UTF-8 (UTF-16 input) count one each.
	if n := utf8.RuneCountInString(lines[line-1]); col < 1 || col > n+1 {
		t.Errorf("%s: column %d, line %d has %d characters", what, col, line, n)
	}
}

// splitLines splits data into lines at every line break YAML knows (CR,
// LF, CR LF, NEL, LS, PS); a final line break ends the last line and
// begins an empty one.
func splitLines(data []byte) []string {
	var lines []string
	s := string(data)
	start := 0
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\r' && strings.HasPrefix(s[i:], "\r\n"):
			n = 2
		case r == '\r' || r == '\n' || r == '\u0085' || r == '\u2028' || r == '\u2029':
		default:
			i += n
			continue
		}
		lines = append(lines, s[start:i])
		i += n
		start = i
	}
	return append(lines, s[start:])
}

// checkRules checks what every rule of a policy that loads must hold.
func checkRules(t *testing.T, data []byte, p *Policy) {
	t.Helper()
	switch p.Passthrough {
	case "", "auto", "off", "require":
	default:
		t.Errorf("passthrough %q", p.Passthrough)
	}
	for i := range p.Rules {
		r := &p.Rules[i]
		if r.Index != i+1 || !contains(filterKeys, r.Kind) {
			t.Errorf("rule %d: index %d, kind %q", i+1, r.Index, r.Kind)
		}
		checkPosition(t, data, "rule "+r.Name(), r.Line, r.Col)
		if r.Kind != "audit" && len(r.Paths) == 0 {
			t.Errorf("rule %s has no paths", r.Name())
		}
		if r.Kind == "rename" && (r.Only != nil || r.Unless != nil) {
			t.Errorf("rule %s has a condition", r.Name())
		}
	}
}

// checkDescribe checks that Describe, which `sievefs check` prints, writes
// a header line naming the file and then one line per rule.
func checkDescribe(t *testing.T, p *Policy) {
	t.Helper()
	var b strings.Builder
	p.Describe(&b)
	out := b.String()
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("Describe output does not end a line: %q", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1+len(p.Rules) || !strings.HasPrefix(lines[0], fuzzFile+": ") {
		t.Fatalf("Describe wrote %d lines for %d rules:\n%s", len(lines), len(p.Rules), out)
	}
	for i, line := range lines[1:] {
		if want := fmt.Sprintf("rule %d: %s", i+1, p.Rules[i].Kind); !strings.HasPrefix(line, want) {
			t.Errorf("Describe line %d: %q, want it to begin with %q", i+2, line, want)
		}
	}
}

// checkBuild checks that a policy that parses builds into a chain of its
// rules, every audit log sent to log (Build opens the logs).
func checkBuild(t *testing.T, p *Policy, log string) {
	t.Helper()
	q := *p
	q.Rules = append([]RuleSpec(nil), p.Rules...)
	for i := range q.Rules {
		if q.Rules[i].Kind == "audit" {
			q.Rules[i].Log = log
		}
	}
	rules, closer, err := q.Build()
	if err != nil {
		t.Fatalf("a policy that parses does not build: %v", err)
	}
	defer closer.Close()
	if len(rules) != len(p.Rules) {
		t.Fatalf("chain of %d rules for %d", len(rules), len(p.Rules))
	}
	for i, r := range rules {
		if r.Name != p.Rules[i].Name() || r.Filter.Kind() != p.Rules[i].Kind {
			t.Errorf("chain rule %d: %s, a %s filter; want %s", i+1, r.Name, r.Filter.Kind(), p.Rules[i].Name())
		}
	}
}

// checkRoundTrip writes the policy back as YAML, every value in canonical
// form, and checks that it parses to the same policy (positions aside).
func checkRoundTrip(t *testing.T, p *Policy) {
	t.Helper()
	data, err := yaml.Marshal(encodePolicy(p))
	if err != nil {
		t.Fatalf("encode the policy: %v", err)
	}
	q, err := Parse(fuzzFile, data)
	if err != nil {
		t.Fatalf("the policy written back does not parse: %v\n%s", err, data)
	}
	if !reflect.DeepEqual(withoutPositions(p), withoutPositions(q)) {
		t.Fatalf("round trip through\n%s\nchanged the policy:\n got %+v\nwant %+v", data, q.Rules, p.Rules)
	}
}

// withoutPositions returns a copy of p with the rules' positions zeroed.
func withoutPositions(p *Policy) *Policy {
	q := *p
	q.Rules = append([]RuleSpec(nil), p.Rules...)
	for i := range q.Rules {
		q.Rules[i].Line, q.Rules[i].Col = 0, 0
	}
	return &q
}

// encodePolicy returns the YAML document of p: strings double-quoted,
// numbers and names as a policy writes them.
func encodePolicy(p *Policy) *yaml.Node {
	str := func(s string) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: yaml.DoubleQuotedStyle}
	}
	plain := func(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: s} }
	seq := func(items []*yaml.Node) *yaml.Node {
		return &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle, Content: items}
	}
	strs := func(ss []string) *yaml.Node {
		var items []*yaml.Node
		for _, s := range ss {
			items = append(items, str(s))
		}
		return seq(items)
	}
	ids := func(ids []uint32) *yaml.Node {
		var items []*yaml.Node
		for _, id := range ids {
			items = append(items, plain(strconv.FormatUint(uint64(id), 10)))
		}
		return seq(items)
	}
	mapping := func(kvs ...*yaml.Node) *yaml.Node { return &yaml.Node{Kind: yaml.MappingNode, Content: kvs} }
	callers := func(c *filter.Callers) *yaml.Node {
		m := mapping()
		if len(c.Uids) > 0 {
			m.Content = append(m.Content, plain("uids"), ids(c.Uids))
		}
		if len(c.Gids) > 0 {
			m.Content = append(m.Content, plain("gids"), ids(c.Gids))
		}
		return m
	}
	top := mapping()
	if p.Passthrough != "" {
		top.Content = append(top.Content, plain("passthrough"), str(p.Passthrough))
	}
	rules := seq(nil)
	rules.Style = 0
	for i := range p.Rules {
		r := &p.Rules[i]
		var v *yaml.Node
		switch r.Kind {
		case "hide", "readonly":
			v = strs(r.Paths)
		case "deny":
			v = mapping(plain("ops"), strs(opNamesOf(r.Ops)), plain("paths"), strs(r.Paths), plain("errno"), str(errnoName(r.Errno)))
		case "remap":
			v = mapping(plain("paths"), strs(r.Paths))
			for _, f := range []struct {
				key string
				val *uint32
				fmt string
			}{{"uid", r.Uid, "%d"}, {"gid", r.Gid, "%d"}, {"file_mode", r.FileMode, "%04o"}, {"dir_mode", r.DirMode, "%04o"}} {
				if f.val == nil {
					continue
				}
				val := plain(fmt.Sprintf(f.fmt, *f.val))
				if f.fmt != "%d" {
					val = str(val.Value)
				}
				v.Content = append(v.Content, plain(f.key), val)
			}
		case "rename":
			v = mapping(plain("paths"), strs(r.Paths), plain("from"), str(r.From), plain("to"), str(r.To))
		case "audit":
			v = mapping(plain("log"), str(r.Log))
			if r.Ops != nil {
				v.Content = append(v.Content, plain("ops"), strs(opNamesOf(r.Ops)))
			}
			if r.Paths != nil {
				v.Content = append(v.Content, plain("paths"), strs(r.Paths))
			}
		case "redact":
			v = mapping(plain("paths"), strs(r.Paths), plain("exif"), strs(r.Exif))
		}
		rule := mapping(plain(r.Kind), v)
		if r.Only != nil {
			rule.Content = append(rule.Content, plain("only"), callers(r.Only))
		}
		if r.Unless != nil {
			rule.Content = append(rule.Content, plain("unless"), callers(r.Unless))
		}
		rules.Content = append(rules.Content, rule)
	}
	if len(rules.Content) == 0 {
		rules.Style = yaml.FlowStyle
	}
	top.Content = append(top.Content, plain("rules"), rules)
	return top
}

// opNamesOf returns the names of ops.
func opNamesOf(ops []filter.Op) []string {
	var out []string
	for _, o := range ops {
		out = append(out, o.String())
	}
	return out
}
