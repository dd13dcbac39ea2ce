// Package config reads sievefs policy files: one YAML document that lists
// the filter rules of a mount, checked strictly. Every problem is reported
// as FILE:LINE:COL: message (hint: …), all of them at once.
//
//	passthrough: auto            # auto | off | require
//	rules:
//	  - hide: ["secrets/**", "**/.env"]
//	  - readonly: ["archive/**"]
//	  - deny: {ops: [unlink, rmdir, rename], paths: ["records/**"], errno: EPERM}
//	  - remap: {paths: ["shared/**"], uid: 1000, gid: 1000, file_mode: "0640", dir_mode: "0750"}
//	  - rename: {paths: ["docs/**"], from: ".markdown", to: ".md"}
//	  - audit: {ops: [open, unlink], paths: ["records/**"], log: "/var/log/sievefs/audit.jsonl"}
//	  - redact: {paths: ["photos/**"], exif: [gps]}
//	    unless: {uids: [0]}
//
// Each rule is a mapping with exactly one filter key and, for every filter
// but rename, optional only: and unless: conditions on the caller's uids
// and gids.
package config

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/filter/audit"
	"github.com/sievefs/sievefs/filter/deny"
	"github.com/sievefs/sievefs/filter/hide"
	"github.com/sievefs/sievefs/filter/readonly"
	"github.com/sievefs/sievefs/filter/redact"
	"github.com/sievefs/sievefs/filter/remap"
	"github.com/sievefs/sievefs/filter/rename"
	"github.com/sievefs/sievefs/internal/chain"
)

// Policy is a parsed policy file.
type Policy struct {
	// File is the policy file's name, as given to Parse or Load.
	File string
	// Passthrough is "auto", "off" or "require"; "" when the file does not
	// say.
	Passthrough string
	// Rules are the rules as understood, in order.
	Rules []RuleSpec
}

// RuleSpec is one rule of a policy as understood. Which fields are set
// depends on Kind.
type RuleSpec struct {
	Index     int    // 1-based position in the rules list
	Kind      string // hide, readonly, deny, remap, rename, audit or redact
	Line, Col int    // where its filter key is

	Paths []string    // the globs; for audit, nil means every path
	Ops   []filter.Op // deny, audit (nil: every filtered operation)
	Errno syscall.Errno

	Uid, Gid          *uint32 // remap
	FileMode, DirMode *uint32 // remap

	From, To string   // rename
	Log      string   // audit
	Exif     []string // redact: the metadata fields removed

	Only, Unless *filter.Callers
}

// Name is the rule's name in logs, metrics and status: "3:deny".
func (r *RuleSpec) Name() string { return fmt.Sprintf("%d:%s", r.Index, r.Kind) }

// Error is one problem in a policy file.
type Error struct {
	File      string
	Line, Col int
	Msg       string
	Hint      string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
	if e.Hint != "" {
		s += " (hint: " + e.Hint + ")"
	}
	return s
}

// Errors is every problem found in a policy file, sorted by position. Its
// message has one line per problem.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

func (es Errors) sort() {
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].Line != es[j].Line {
			return es[i].Line < es[j].Line
		}
		return es[i].Col < es[j].Col
	})
}

// Load reads and parses the policy file.
func Load(file string) (*Policy, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	return Parse(file, data)
}

// Parse parses and checks a policy; file names it in errors. It opens
// nothing. The error is an Errors listing every problem.
func Parse(file string, data []byte) (*Policy, error) {
	p := &parser{file: file}
	pol := p.parse(data)
	if len(p.errs) > 0 {
		p.errs.sort()
		return nil, p.errs
	}
	return pol, nil
}

// Build makes the policy's rules and checks that they make a chain, as a
// mount would. It opens the audit logs (making them and their directories
// if need be); the Closer closes them once the rules are no longer in use.
// A rule that cannot be built is an Errors at the rule's position; what
// the rules before it made is removed again.
func (p *Policy) Build() ([]filter.Rule, io.Closer, error) {
	var cs closers
	rules := make([]filter.Rule, 0, len(p.Rules))
	for i := range p.Rules {
		r := &p.Rules[i]
		f, err := r.build()
		if err != nil {
			cs.discard()
			hint := ""
			if errors.Is(err, fs.ErrPermission) {
				hint = "the log is opened as the user sievefs runs as: check as the user that mounts"
			}
			return nil, nil, Errors{{File: p.File, Line: r.Line, Col: r.Col, Msg: fmt.Sprintf("rule %d (%s): %v", r.Index, r.Kind, err), Hint: hint}}
		}
		if c, ok := f.(io.Closer); ok {
			cs = append(cs, c)
		}
		rules = append(rules, filter.Rule{Name: r.Name(), Filter: f, When: filter.Condition{Only: r.Only, Unless: r.Unless}})
	}
	if _, err := chain.New(rules...); err != nil {
		cs.Close()
		return nil, nil, fmt.Errorf("%s: %w", p.File, err)
	}
	return rules, cs, nil
}

// build makes the rule's filter.
func (r *RuleSpec) build() (filter.Filter, error) {
	var pats filter.Patterns
	if r.Paths != nil {
		var err error
		if pats, err = filter.ParsePatterns(r.Paths); err != nil {
			return nil, err
		}
	}
	switch r.Kind {
	case "hide":
		return hide.New(pats), nil
	case "readonly":
		return readonly.New(pats), nil
	case "deny":
		return deny.New(r.Ops, pats, r.Errno), nil
	case "remap":
		return remap.New(remap.Config{Paths: pats, Uid: r.Uid, Gid: r.Gid, FileMode: r.FileMode, DirMode: r.DirMode}), nil
	case "rename":
		return rename.New(pats, r.From, r.To)
	case "audit":
		return audit.New(audit.Config{Ops: r.Ops, Paths: pats, Log: r.Log})
	case "redact":
		return redact.New(pats, r.Exif)
	}
	return nil, fmt.Errorf("unknown filter %q", r.Kind)
}

// closers closes the filters that hold files (audit logs).
type closers []io.Closer

func (cs closers) Close() error {
	var errs []error
	for _, c := range cs {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}

// Discard closes what the Closer of Build closes and removes what building
// the filters created, as far as it is unchanged (see
// audit.Filter.Discard): for a policy built only to be checked.
func Discard(c io.Closer) {
	if cs, ok := c.(closers); ok {
		cs.discard()
		return
	}
	c.Close()
}

// discard closes the filters and removes what making them created, the
// last made first (a directory made for one log may hold the next).
func (cs closers) discard() {
	for _, c := range slices.Backward(cs) {
		if d, ok := c.(interface{ Discard() error }); ok {
			d.Discard()
		} else {
			c.Close()
		}
	}
}

// filteredOps returns every operation a policy may name.
func filteredOps() []filter.Op {
	var ops []filter.Op
	for o := filter.Op(0); o < filter.NumOps; o++ {
		if o.Filtered() {
			ops = append(ops, o)
		}
	}
	return ops
}

// Describe writes the policy as understood: a header line, then one line
// per rule.
func (p *Policy) Describe(w io.Writer) {
	pt := "passthrough " + p.Passthrough
	if p.Passthrough == "" {
		pt = "passthrough not set (the --passthrough flag decides, auto by default)"
	}
	n := fmt.Sprintf("%d rules", len(p.Rules))
	if len(p.Rules) == 1 {
		n = "1 rule"
	}
	fmt.Fprintf(w, "%s: %s, %s\n", p.File, n, pt)
	for i := range p.Rules {
		fmt.Fprintln(w, p.Rules[i].String())
	}
}

// String describes the rule in one line, as Describe does. Values that
// would not print as one line of plain text (a glob with a newline or a
// control character) are shown quoted, as Go quotes strings.
func (r *RuleSpec) String() string {
	var globs []string
	for _, p := range r.Paths {
		globs = append(globs, shown(p))
	}
	paths := strings.Join(globs, ", ")
	var what string
	switch r.Kind {
	case "hide":
		what = "hide " + paths
	case "readonly":
		what = "readonly " + paths + " (changes fail with EROFS)"
	case "deny":
		what = fmt.Sprintf("deny %s on %s with %s", opList(r.Ops), paths, errnoName(r.Errno))
	case "remap":
		var parts []string
		if r.Uid != nil {
			parts = append(parts, fmt.Sprintf("uid %d", *r.Uid))
		}
		if r.Gid != nil {
			parts = append(parts, fmt.Sprintf("gid %d", *r.Gid))
		}
		if r.FileMode != nil {
			parts = append(parts, fmt.Sprintf("file mode %04o", *r.FileMode))
		}
		if r.DirMode != nil {
			parts = append(parts, fmt.Sprintf("directory mode %04o", *r.DirMode))
		}
		what = fmt.Sprintf("remap %s to %s", paths, strings.Join(parts, ", "))
	case "rename":
		what = fmt.Sprintf("rename %s to %s under %s", shown(r.From), shown(r.To), paths)
	case "audit":
		if r.Paths == nil {
			paths = "every path"
		}
		what = fmt.Sprintf("audit %s on %s to %s", opList(r.Ops), paths, shown(r.Log))
	case "redact":
		what = fmt.Sprintf("redact %s in %s", strings.Join(r.Exif, ", "), paths)
	default:
		what = r.Kind
	}
	return fmt.Sprintf("rule %d: %s, %s", r.Index, what, conditionText(r.Only, r.Unless))
}

// shown returns s as Describe prints it: as it is when it is printable
// text, else quoted.
func shown(s string) string {
	if printable(s) {
		return s
	}
	return strconv.Quote(s)
}

// printable reports whether s is valid UTF-8 made of printable characters
// (spaces included, not tabs or line breaks).
func printable(s string) bool {
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func opList(ops []filter.Op) string {
	if ops == nil {
		return "every operation"
	}
	names := make([]string, len(ops))
	for i, o := range ops {
		names[i] = o.String()
	}
	return strings.Join(names, ", ")
}

func errnoName(e syscall.Errno) string {
	if e == 0 {
		e = syscall.EACCES
	}
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return fmt.Sprintf("errno %d", int(e))
}

// conditionText says which callers a rule applies to.
func conditionText(only, unless *filter.Callers) string {
	switch {
	case only == nil && unless == nil:
		return "for every caller"
	case only == nil:
		return "for callers other than " + callersText(unless)
	case unless == nil:
		return "only for " + callersText(only)
	}
	return "only for " + callersText(only) + ", other than " + callersText(unless)
}

func callersText(c *filter.Callers) string {
	var parts []string
	for _, set := range []struct {
		name string
		ids  []uint32
	}{{"uid", c.Uids}, {"gid", c.Gids}} {
		if len(set.ids) == 0 {
			continue
		}
		ids := make([]string, len(set.ids))
		for i, id := range set.ids {
			ids[i] = strconv.FormatUint(uint64(id), 10)
		}
		name := set.name
		if len(ids) > 1 {
			name += "s"
		}
		parts = append(parts, name+" "+strings.Join(ids, ", "))
	}
	return strings.Join(parts, " or ")
}
