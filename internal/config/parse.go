package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"

	"github.com/sievefs/sievefs/filter"
	"github.com/sievefs/sievefs/filter/redact"
	"github.com/sievefs/sievefs/filter/rename"
)

// The keys a policy may hold, at each level.
var (
	topKeys       = []string{"passthrough", "rules"}
	filterKeys    = []string{"hide", "readonly", "deny", "remap", "rename", "audit", "redact"}
	conditionKeys = []string{"only", "unless"}
	ruleKeys      = append(append([]string{}, filterKeys...), conditionKeys...)
	denyKeys      = []string{"ops", "paths", "errno"}
	remapKeys     = []string{"paths", "uid", "gid", "file_mode", "dir_mode"}
	renameKeys    = []string{"paths", "from", "to"}
	auditKeys     = []string{"ops", "paths", "log"}
	redactKeys    = []string{"paths", "exif"}
	callerKeys    = []string{"uids", "gids"}
)

// parser walks the YAML tree of one policy and collects every error.
type parser struct {
	file string
	errs Errors
}

// errorf records an error at n's position.
func (p *parser) errorf(n *yaml.Node, hint, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

// errorAt records an error at a position.
func (p *parser) errorAt(line, col int, hint, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Col: col, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

func (p *parser) parse(data []byte) *Policy {
	pol := &Policy{File: p.file}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorAt(1, 1, "a policy has at least a rules: list", "empty policy file")
		} else {
			p.syntax(err)
		}
		return pol
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		p.errorf(&next, "drop the --- and what follows, or merge the documents", "a second YAML document: a policy is one document")
	} else if !errors.Is(err, io.EOF) {
		p.syntax(err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	root = resolve(root)
	switch {
	case root.Kind == yaml.ScalarNode && root.Tag == "!!null":
		p.errorAt(1, 1, "a policy has at least a rules: list", "empty policy file")
		return pol
	case root.Kind != yaml.MappingNode:
		p.errorf(root, "the document is a mapping with the keys passthrough and rules", "a policy is a mapping, not %s", kindName(root))
		return pol
	}
	for _, kv := range p.mapping(root, "top level", topKeys) {
		switch kv.key.Value {
		case "passthrough":
			if s, ok := p.str(kv.value, "passthrough"); ok {
				switch s {
				case "auto", "off", "require":
					pol.Passthrough = s
				default:
					p.errorf(kv.value, "auto, off or require", "passthrough %q: unknown mode", s)
				}
			}
		case "rules":
			pol.Rules = p.rules(kv.value)
		}
	}
	return pol
}

// yamlLine finds the line number yaml.v3 puts in its messages.
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// syntax records a YAML syntax or decoding error.
func (p *parser) syntax(err error) {
	msg := err.Error()
	line := 1
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	hint := ""
	if strings.Contains(msg, "alphabetic or numeric character") || strings.Contains(msg, "alias") {
		hint = `quote globs that begin with * or contain ": ", as "*.tmp"`
	}
	p.errorAt(line, 1, hint, "YAML syntax: %s", msg)
}

// resolve follows an alias to the node it names.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "empty"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "a YAML node of another kind"
}

// pair is one key and its value in a mapping.
type pair struct {
	key, value *yaml.Node
}

// mapping returns the pairs of the mapping n (the caller checked its kind),
// reporting keys that are not in valid, and repeated keys. It returns
// only the pairs with valid keys, each once.
func (p *parser) mapping(n *yaml.Node, what string, valid []string) []pair {
	var out []pair
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, "valid keys: "+strings.Join(valid, ", "), "%s: a key must be a name, not %s", what, kindName(k))
			continue
		}
		if !contains(valid, k.Value) {
			p.errorf(k, suggest(k.Value, valid), "%s: unknown key %q", what, k.Value)
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			p.errorf(k, "keep one of them", "%s: key %q repeated (first at line %d)", what, k.Value, prev.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, pair{k, v})
	}
	return out
}

// asMapping checks that n is a mapping and returns its valid pairs.
func (p *parser) asMapping(n *yaml.Node, what, example string, valid []string) ([]pair, bool) {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "write it as "+example, "%s: want a mapping, not %s", what, kindName(n))
		return nil, false
	}
	return p.mapping(n, what, valid), true
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggest is the hint for an unknown name: the closest valid one, if any
// is close, and the valid names.
func suggest(name string, valid []string) string {
	best, bestD := "", math.MaxInt
	for _, v := range valid {
		if d := distance(strings.ToLower(name), v); d < bestD {
			best, bestD = v, d
		}
	}
	list := "valid: " + strings.Join(valid, ", ")
	near := bestD <= 2 && bestD < len(name) || bestD == 3 && len(name) >= 7
	if near || strings.HasPrefix(best, name) && len(name) >= 2 {
		return fmt.Sprintf("did you mean %q? %s", best, list)
	}
	return list
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// str returns the string scalar n.
func (p *parser) str(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errorf(n, "", "%s: want a string, not %s", what, kindName(n))
		return "", false
	}
	return n.Value, true
}

// list returns the items of the non-empty list n.
func (p *parser) list(n *yaml.Node, what, example string) ([]*yaml.Node, bool) {
	if n.Kind != yaml.SequenceNode {
		hint := "write it as " + example
		if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
			hint = fmt.Sprintf("put it in brackets: [%s]", n.Value)
			if n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 || strings.ContainsAny(n.Value, "*:[]{}") || !printable(n.Value) {
				hint = fmt.Sprintf("put it in brackets: [%q]", n.Value)
			}
		}
		p.errorf(n, hint, "%s: want a list, not %s", what, kindName(n))
		return nil, false
	}
	if len(n.Content) == 0 {
		p.errorf(n, "give at least one, as "+example, "%s: empty list", what)
		return nil, false
	}
	items := make([]*yaml.Node, len(n.Content))
	for i, it := range n.Content {
		items[i] = resolve(it)
	}
	return items, true
}

// globs returns the globs of the non-empty list n, each checked.
func (p *parser) globs(n *yaml.Node, what string) ([]string, bool) {
	items, ok := p.list(n, what, `["secrets/**", "**/.env"]`)
	if !ok {
		return nil, false
	}
	var out []string
	for _, it := range items {
		s, sok := p.str(it, what)
		if !sok {
			ok = false
			continue
		}
		if _, err := filter.ParsePattern(s); err != nil {
			p.errorf(it, `globs are relative to the mount root; * matches within one name, ** any number of directories, a trailing / the directory and all beneath it`, "%s: bad %v", what, err)
			ok = false
			continue
		}
		out = append(out, s)
	}
	return out, ok
}

// rules parses the rules list.
func (p *parser) rules(n *yaml.Node) []RuleSpec {
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, `each rule is a list item: "- hide: [...]"`, "rules: want a list, not %s", kindName(n))
		return nil
	}
	var out []RuleSpec
	data := 0
	for i, item := range n.Content {
		r, ok := p.rule(i+1, resolve(item))
		if !ok {
			continue
		}
		if r.Kind == "redact" {
			if data++; data == filter.MaxDataRules+1 {
				p.errorAt(r.Line, r.Col, "merge the redact rules", "rule %d: more than %d redact rules", r.Index, filter.MaxDataRules)
			}
		}
		out = append(out, r)
	}
	return out
}

// rule parses the rule at index (1-based); ok is false when it has errors.
func (p *parser) rule(index int, n *yaml.Node) (RuleSpec, bool) {
	r := RuleSpec{Index: index}
	what := fmt.Sprintf("rule %d", index)
	if n.Kind != yaml.MappingNode {
		p.errorf(n, `a rule is a mapping with one filter key, as "- hide: [\"secrets/**\"]"`, "%s: want a mapping, not %s", what, kindName(n))
		return r, false
	}
	before := len(p.errs)
	var fkey, fval *yaml.Node
	var conds []pair
	for _, kv := range p.mapping(n, what, ruleKeys) {
		if contains(conditionKeys, kv.key.Value) {
			conds = append(conds, kv)
			continue
		}
		if fkey != nil {
			p.errorf(kv.key, "give each filter its own list item: - "+kv.key.Value+": ...", "%s: two filters in one rule, %s and %s", what, fkey.Value, kv.key.Value)
			continue
		}
		fkey, fval = kv.key, kv.value
	}
	if fkey == nil {
		if len(p.errs) == before {
			p.errorf(n, "one of "+strings.Join(filterKeys, ", "), "%s: no filter", what)
		}
		return r, false
	}
	r.Kind, r.Line, r.Col = fkey.Value, fkey.Line, fkey.Column
	what = fmt.Sprintf("rule %d (%s)", index, r.Kind)
	switch r.Kind {
	case "hide", "readonly":
		r.Paths, _ = p.globs(fval, what)
	case "deny":
		p.deny(&r, fval, what)
	case "remap":
		p.remap(&r, fval, what)
	case "rename":
		p.rename(&r, fval, what)
	case "audit":
		p.audit(&r, fval, what)
	case "redact":
		p.redact(&r, fval, what)
	}
	for _, c := range conds {
		callers := p.callers(c.value, fmt.Sprintf("%s: %s", what, c.key.Value))
		if c.key.Value == "only" {
			r.Only = callers
		} else {
			r.Unless = callers
		}
		if r.Kind == "rename" {
			p.errorf(fkey, "names must be the same for every caller: drop "+c.key.Value+", or hide instead", "%s: a rename rule applies to every caller; it cannot have %s", what, c.key.Value)
		}
	}
	return r, len(p.errs) == before
}

// required reports the keys of valid that pairs lacks, at the mapping n.
func (p *parser) required(n *yaml.Node, pairs []pair, what, example string, keys ...string) {
	for _, k := range keys {
		found := false
		for _, kv := range pairs {
			found = found || kv.key.Value == k
		}
		if !found {
			p.errorf(n, "write it as "+example, "%s: missing %q", what, k)
		}
	}
}

func (p *parser) deny(r *RuleSpec, n *yaml.Node, what string) {
	const example = `{ops: [unlink, rename], paths: ["records/**"]}`
	pairs, ok := p.asMapping(n, what, example, denyKeys)
	if !ok {
		return
	}
	p.required(n, pairs, what, example, "ops", "paths")
	for _, kv := range pairs {
		switch kv.key.Value {
		case "ops":
			r.Ops = p.ops(kv.value, what+": ops", "deny")
		case "paths":
			r.Paths, _ = p.globs(kv.value, what+": paths")
		case "errno":
			r.Errno = p.errno(kv.value, what+": errno")
		}
	}
	if r.Errno == 0 {
		r.Errno = unix.EACCES
	}
}

func (p *parser) remap(r *RuleSpec, n *yaml.Node, what string) {
	const example = `{paths: ["shared/**"], uid: 1000, file_mode: "0640"}`
	pairs, ok := p.asMapping(n, what, example, remapKeys)
	if !ok {
		return
	}
	p.required(n, pairs, what, example, "paths")
	if len(pairs) == 1 && pairs[0].key.Value == "paths" {
		p.errorf(n, "set uid, gid, file_mode or dir_mode", "%s: nothing to present", what)
	}
	for _, kv := range pairs {
		w := what + ": " + kv.key.Value
		switch kv.key.Value {
		case "paths":
			r.Paths, _ = p.globs(kv.value, w)
		case "uid":
			r.Uid = p.id(kv.value, w)
		case "gid":
			r.Gid = p.id(kv.value, w)
		case "file_mode":
			r.FileMode = p.mode(kv.value, w)
		case "dir_mode":
			r.DirMode = p.mode(kv.value, w)
		}
	}
}

func (p *parser) rename(r *RuleSpec, n *yaml.Node, what string) {
	const example = `{paths: ["docs/**"], from: ".markdown", to: ".md"}`
	pairs, ok := p.asMapping(n, what, example, renameKeys)
	if !ok {
		return
	}
	p.required(n, pairs, what, example, "paths", "from", "to")
	var from, to *yaml.Node
	for _, kv := range pairs {
		switch kv.key.Value {
		case "paths":
			r.Paths, _ = p.globs(kv.value, what+": paths")
		case "from":
			if s, ok := p.str(kv.value, what+": from"); ok {
				r.From, from = s, kv.value
			}
		case "to":
			if s, ok := p.str(kv.value, what+": to"); ok {
				r.To, to = s, kv.value
			}
		}
	}
	if from != nil && to != nil {
		if _, err := rename.New(nil, r.From, r.To); err != nil {
			p.errorf(from, "from and to are suffixes of a name, as .markdown and .md", "%s: %v", what, err)
		}
	}
}

func (p *parser) audit(r *RuleSpec, n *yaml.Node, what string) {
	const example = `{ops: [open, unlink], log: "/var/log/sievefs/audit.jsonl"}`
	pairs, ok := p.asMapping(n, what, example, auditKeys)
	if !ok {
		return
	}
	p.required(n, pairs, what, example, "log")
	for _, kv := range pairs {
		switch kv.key.Value {
		case "ops":
			r.Ops = p.ops(kv.value, what+": ops", "audit")
		case "paths":
			r.Paths, _ = p.globs(kv.value, what+": paths")
		case "log":
			s, ok := p.str(kv.value, what+": log")
			if !ok {
				continue
			}
			if !filepath.IsAbs(s) {
				p.errorf(kv.value, "the daemon runs in /: give the log file's absolute path", "%s: log %q is a relative path", what, s)
				continue
			}
			r.Log = filepath.Clean(s)
		}
	}
}

func (p *parser) redact(r *RuleSpec, n *yaml.Node, what string) {
	const example = `{paths: ["photos/**"], exif: [gps]}`
	pairs, ok := p.asMapping(n, what, example, redactKeys)
	if !ok {
		return
	}
	p.required(n, pairs, what, example, "paths", "exif")
	for _, kv := range pairs {
		switch kv.key.Value {
		case "paths":
			r.Paths, _ = p.globs(kv.value, what+": paths")
		case "exif":
			items, ok := p.list(kv.value, what+": exif", "[gps]")
			if !ok {
				continue
			}
			for _, it := range items {
				s, ok := p.str(it, what+": exif")
				if !ok {
					continue
				}
				if _, err := redact.New(nil, []string{s}); err != nil {
					p.errorf(it, "", "%s: exif: %s", what, strings.TrimPrefix(err.Error(), "redact: "))
					continue
				}
				if !contains(r.Exif, s) {
					r.Exif = append(r.Exif, s)
				}
			}
		}
	}
}

// ops returns the operations of the list n; verb ("deny", "audit") is for
// the hints.
func (p *parser) ops(n *yaml.Node, what, verb string) []filter.Op {
	items, ok := p.list(n, what, "[unlink, rename]")
	if !ok {
		return nil
	}
	var names []string
	for _, o := range filteredOps() {
		names = append(names, o.String())
	}
	var out []filter.Op
	for _, it := range items {
		s, ok := p.str(it, what)
		if !ok {
			continue
		}
		o, ok := filter.ParseOp(s)
		switch {
		case !ok:
			p.errorf(it, suggest(s, names), "%s: unknown operation %q", what, s)
		case !o.Filtered():
			hint := "reads and writes are not filtered: " + verb + " open instead"
			switch o {
			case filter.OpReaddir, filter.OpReaddirplus, filter.OpReleasedir, filter.OpFsyncdir:
				hint = "listings are not filtered: " + verb + " opendir instead"
			case filter.OpForget:
				hint = "forget is the kernel dropping a node; nothing to " + verb
			}
			p.errorf(it, hint, "%s: operation %q is not filtered", what, s)
		default:
			if !containsOp(out, o) {
				out = append(out, o)
			}
		}
	}
	return out
}

func containsOp(ops []filter.Op, o filter.Op) bool {
	for _, x := range ops {
		if x == o {
			return true
		}
	}
	return false
}

// errno returns the errno named by n, or 0 after reporting an error.
func (p *parser) errno(n *yaml.Node, what string) unix.Errno {
	s, ok := p.str(n, what)
	if !ok {
		return 0
	}
	e := errnoValue(s)
	if e == 0 {
		hint := "an errno name, as EACCES, EPERM, EROFS or ENOENT"
		if errnoValue(strings.ToUpper(s)) != 0 {
			hint = "errno names are upper case: " + strings.ToUpper(s)
		}
		p.errorf(n, hint, "%s: unknown errno %q", what, s)
	}
	return e
}

// errnoValue returns the errno of a name ("EACCES"), or 0.
func errnoValue(name string) unix.Errno {
	switch name {
	case "EWOULDBLOCK":
		return unix.EWOULDBLOCK
	case "ENOTSUP":
		return unix.ENOTSUP
	case "EDEADLOCK":
		return unix.EDEADLOCK
	}
	for e := unix.Errno(1); e < 256; e++ {
		if unix.ErrnoName(e) == name {
			return e
		}
	}
	return 0
}

// id returns the uid or gid n.
func (p *parser) id(n *yaml.Node, what string) *uint32 {
	hint := "a uid or gid is a number from 0 to 4294967294"
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		if n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
			if _, err := strconv.ParseUint(n.Value, 10, 32); err == nil {
				hint = "write the number without quotes"
			}
		}
		p.errorf(n, hint, "%s: want a non-negative integer, not %s", what, kindName(n))
		return nil
	}
	var v int64
	if err := n.Decode(&v); err != nil || v > math.MaxUint32-1 {
		p.errorf(n, hint, "%s: %s is out of range", what, shown(n.Value))
		return nil
	}
	if v < 0 {
		p.errorf(n, hint, "%s: %s is negative", what, shown(n.Value))
		return nil
	}
	u := uint32(v)
	return &u
}

// octal matches a mode as a policy writes it.
var octal = regexp.MustCompile(`^[0-7]+$`)

// mode returns the permission bits n, a quoted string of octal digits.
func (p *parser) mode(n *yaml.Node, what string) *uint32 {
	if n.Kind == yaml.ScalarNode && (n.Tag == "!!int" || n.Tag == "!!float") {
		digits := strings.TrimLeft(strings.TrimPrefix(n.Value, "0o"), "0")
		p.errorf(n, fmt.Sprintf("quote it: %q", "0"+digits), "%s: %s is a YAML number, read as decimal or octal depending on how it is written", what, shown(n.Value))
		return nil
	}
	s, ok := p.str(n, what)
	if !ok {
		return nil
	}
	hint := `a string of octal digits, as "0640"`
	if !octal.MatchString(s) {
		p.errorf(n, hint, "%s: %q is not octal", what, s)
		return nil
	}
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o7777 {
		p.errorf(n, hint, "%s: %q is more than 07777", what, s)
		return nil
	}
	m := uint32(v)
	return &m
}

// callers parses the mapping of an only or unless condition.
func (p *parser) callers(n *yaml.Node, what string) *filter.Callers {
	const example = "{uids: [0, 1000], gids: [100]}"
	pairs, ok := p.asMapping(n, what, example, callerKeys)
	if !ok {
		return nil
	}
	if len(pairs) == 0 && len(n.Content) == 0 {
		p.errorf(n, "give uids, gids or both, as "+example, "%s: no callers", what)
		return nil
	}
	c := &filter.Callers{}
	for _, kv := range pairs {
		items, ok := p.list(kv.value, what+": "+kv.key.Value, "[0, 1000]")
		if !ok {
			continue
		}
		for _, it := range items {
			id := p.id(it, what+": "+kv.key.Value)
			if id == nil {
				continue
			}
			if kv.key.Value == "uids" {
				c.Uids = append(c.Uids, *id)
			} else {
				c.Gids = append(c.Gids, *id)
			}
		}
	}
	return c
}
