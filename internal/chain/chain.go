// Package chain is the engine that runs a mount's rules (package filter):
// it indexes them by family and operation, runs pre-filters in order and
// post-filters in reverse, applies conditions, counts each rule's
// decisions, and answers the dispatcher's questions about caching (which
// answers depend on the caller, which listings may be kept for everyone).
// Filter authors never see it: they give rules to sievefs.Options.Rules.
package chain

import (
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"

	"github.com/sievefs/sievefs/filter"
)

// Indexes of the decision counters of a rule, in the order of decisionKinds.
const (
	countError = iota
	countAnswer
	countRewrite
	countDrop
	countData
	countRename
)

var decisionKinds = [...]filter.Decision{filter.DecisionError, filter.DecisionAnswer, filter.DecisionRewrite, filter.DecisionDrop, filter.DecisionData, filter.DecisionRename}

type rule struct {
	filter.Rule
	pre       filter.PreFilter
	post      filter.PostFilter
	attr      filter.AttrFilter
	dir       filter.DirFilter
	names     filter.NameMapper
	data      filter.DataFilter
	dependent filter.CallerDependent
	scoped    filter.Scoped
	ops       filter.OpSet // the operations its pre- and post-filter see (OpScoped)
	counts    [len(decisionKinds)]atomic.Uint64
}

func (r *rule) count(d int) { r.counts[d].Add(1) }

// Chain runs the rules of a mount. It is immutable once made and safe for
// concurrent use; a policy reload makes a new one.
type Chain struct {
	rules []*rule
	// Indexes into rules, per family, in rule order; pre and post also
	// per operation.
	pre, post              [filter.NumOps][]int
	nPre, nPost            int // rules with a pre-, post-filter
	attr, dir, names, data []int
}

// New checks the rules and makes a chain of them. Every rule's filter
// must implement at least one family; name mappers cannot have conditions
// (names must be the same for every caller); at most MaxDataRules rules may
// be data filters.
func New(rules ...filter.Rule) (*Chain, error) {
	c := &Chain{}
	for i, r := range rules {
		if r.Filter == nil {
			return nil, fmt.Errorf("rule %d: no filter", i+1)
		}
		if r.Name == "" {
			r.Name = fmt.Sprintf("%d:%s", i+1, r.Filter.Kind())
		}
		x := &rule{Rule: r}
		x.pre, _ = r.Filter.(filter.PreFilter)
		x.post, _ = r.Filter.(filter.PostFilter)
		x.attr, _ = r.Filter.(filter.AttrFilter)
		x.dir, _ = r.Filter.(filter.DirFilter)
		x.names, _ = r.Filter.(filter.NameMapper)
		x.data, _ = r.Filter.(filter.DataFilter)
		x.dependent, _ = r.Filter.(filter.CallerDependent)
		x.scoped, _ = r.Filter.(filter.Scoped)
		x.ops = filter.AllOps
		if s, ok := r.Filter.(filter.OpScoped); ok {
			x.ops = s.Sees()
		}
		if x.pre == nil && x.post == nil && x.attr == nil && x.dir == nil && x.names == nil && x.data == nil {
			return nil, fmt.Errorf("rule %s: %T implements no filter family", r.Name, r.Filter)
		}
		if x.names != nil && !r.When.IsZero() {
			return nil, fmt.Errorf("rule %s: a name mapper applies to every caller; drop only/unless", r.Name)
		}
		c.add(x)
	}
	if len(c.data) > filter.MaxDataRules {
		return nil, fmt.Errorf("%d data-rewriting rules: at most %d", len(c.data), filter.MaxDataRules)
	}
	return c, nil
}

// add appends the rule x and indexes it in the families it implements.
func (c *Chain) add(x *rule) {
	idx := len(c.rules)
	c.rules = append(c.rules, x)
	for _, fam := range []struct {
		ok  bool
		set *[]int
	}{{x.attr != nil, &c.attr}, {x.dir != nil, &c.dir}, {x.names != nil, &c.names}, {x.data != nil, &c.data}} {
		if fam.ok {
			*fam.set = append(*fam.set, idx)
		}
	}
	if x.pre != nil {
		c.nPre++
	}
	if x.post != nil {
		c.nPost++
	}
	for o := range filter.NumOps {
		if !x.ops.Has(o) {
			continue
		}
		if x.pre != nil {
			c.pre[o] = append(c.pre[o], idx)
		}
		if x.post != nil {
			c.post[o] = append(c.post[o], idx)
		}
	}
}

// Below returns the chain of the rules that may act on paths strictly
// beneath the directory dir (its view path): all of c's but those whose
// filter is ScopedBelow and does not cover below dir. For those paths it
// answers every question about one path (Keep, ViewName, LowerName, Attr,
// MayClaim, Claims, DependsOnCaller, and Pre of an operation that names no
// other path) as c does, and at less cost: the entries of dir's listing are
// asked about with it. It is not for operations that also name a path
// elsewhere (rename, link). Data rules are kept all or none, so that the
// masks of Claims mean the same rules as c's. The rules are shared with c,
// and so are their decision counts; it returns c itself when no rule is
// left out.
func (c *Chain) Below(dir string) *Chain {
	if c == nil {
		return nil
	}
	keep := make([]bool, len(c.rules))
	all, data := true, false
	for i, x := range c.rules {
		below, ok := x.Filter.(filter.ScopedBelow)
		keep[i] = !ok || below.CoversBelow(dir)
		all = all && keep[i]
		data = data || keep[i] && x.data != nil
	}
	if all {
		return c
	}
	b := &Chain{}
	for i, x := range c.rules {
		if keep[i] || data && x.data != nil {
			b.add(x)
		}
	}
	return b
}

// Len returns the number of rules; a nil chain has none.
func (c *Chain) Len() int {
	if c == nil {
		return 0
	}
	return len(c.rules)
}

// Rules returns the rules, in order.
func (c *Chain) Rules() []filter.Rule {
	out := make([]filter.Rule, len(c.rules))
	for i, r := range c.rules {
		out[i] = r.Rule
	}
	return out
}

// Pre runs the pre-filters in order. It returns nil to go on, ErrAnswered, or
// the errno that ends the operation.
func (c *Chain) Pre(r *filter.Request) error {
	if r.Op >= filter.NumOps {
		return nil
	}
	for _, i := range c.pre[r.Op] {
		x := c.rules[i]
		if !x.When.Applies(r.Caller) {
			continue
		}
		if err := x.pre.Pre(r); err != nil {
			if errors.Is(err, filter.ErrAnswered) {
				x.count(countAnswer)
				return filter.ErrAnswered
			}
			x.count(countError)
			return err
		}
	}
	return nil
}

// HasPost reports whether any rule has a post-filter.
func (c *Chain) HasPost() bool { return c.nPost > 0 }

// Observes reports whether any rule's pre- or post-filter sees the
// operation o.
func (c *Chain) Observes(o filter.Op) bool {
	return o < filter.NumOps && len(c.pre[o])+len(c.post[o]) > 0
}

// PostSees reports whether any rule's post-filter sees the operation o.
func (c *Chain) PostSees(o filter.Op) bool { return o < filter.NumOps && len(c.post[o]) > 0 }

// Post runs the post-filters in reverse order and returns the result the
// kernel gets.
func (c *Chain) Post(r *filter.Request, err error) error {
	if r.Op >= filter.NumOps {
		return err
	}
	post := c.post[r.Op]
	for k := len(post) - 1; k >= 0; k-- {
		x := c.rules[post[k]]
		if !x.When.Applies(r.Caller) {
			continue
		}
		out := x.post.Post(r, err)
		if out != err {
			if out != nil {
				x.count(countError)
			} else {
				x.count(countRewrite)
			}
		}
		err = out
	}
	return err
}

// Attr runs the attribute filters, in reverse order (they rewrite an
// output), on the attributes of the node at path.
func (c *Chain) Attr(r *filter.Request, path string, a *filter.Attr) {
	for k := len(c.attr) - 1; k >= 0; k-- {
		x := c.rules[c.attr[k]]
		if x.When.Applies(r.Caller) && x.attr.Attr(r, path, a) {
			x.count(countRewrite)
		}
	}
}

// HasAttr reports whether any rule rewrites attributes.
func (c *Chain) HasAttr() bool { return len(c.attr) > 0 }

// HasDir reports whether any rule filters listings.
func (c *Chain) HasDir() bool { return len(c.dir) > 0 }

// Keep reports whether a directory entry is listed to r's caller.
func (c *Chain) Keep(r *filter.Request, e *filter.DirEntry) bool {
	for k := len(c.dir) - 1; k >= 0; k-- {
		x := c.rules[c.dir[k]]
		if x.When.Applies(r.Caller) && !x.dir.Keep(r, e) {
			x.count(countDrop)
			return false
		}
	}
	return true
}

// MapsNames reports whether any rule maps names.
func (c *Chain) MapsNames() bool { return len(c.names) > 0 }

// LowerName maps a view name in the view directory dir to its lower name,
// through every name mapper in order.
func (c *Chain) LowerName(dir, name string) (string, error) {
	for _, i := range c.names {
		x := c.rules[i]
		lower, err := x.names.LowerName(dir, name)
		if err != nil {
			x.count(countError)
			return "", err
		}
		if lower != name {
			x.count(countRename)
		}
		name = lower
	}
	return name, nil
}

// ViewName maps a lower name in the view directory dir to its view name,
// through every name mapper in reverse order; false means it is not shown.
func (c *Chain) ViewName(dir, lower string) (string, bool) {
	for k := len(c.names) - 1; k >= 0; k-- {
		x := c.rules[c.names[k]]
		view, ok := x.names.ViewName(dir, lower)
		if !ok {
			x.count(countDrop)
			return "", false
		}
		lower = view
	}
	return lower, true
}

// HasData reports whether any rule is a data filter.
func (c *Chain) HasData() bool { return len(c.data) > 0 }

// DataRules is the number of data rules: the masks of Claims are below
// 1<<DataRules.
func (c *Chain) DataRules() int { return len(c.data) }

// MayClaim reports whether a data rule could claim the file at path for
// caller, by its condition and, for a Scoped filter, its paths: a cheap
// check before Claims, which may read the file.
func (c *Chain) MayClaim(caller filter.Caller, path string) bool {
	for _, i := range c.data {
		x := c.rules[i]
		if x.When.Applies(caller) && (x.scoped == nil || x.scoped.Covers(path)) {
			return true
		}
	}
	return false
}

// Claims returns the set of data rules (bit k for the k-th data rule) that
// must see the data of the regular file r.Path for r's caller.
func (c *Chain) Claims(r *filter.Request) uint8 {
	var mask uint8
	for k, i := range c.data {
		x := c.rules[i]
		if x.When.Applies(r.Caller) && x.data.Claims(r) {
			mask |= 1 << k
		}
	}
	return mask
}

// Open opens the streams of the data rules in mask, in rule order, each
// over the one before (the first over the lower file).
func (c *Chain) Open(r *filter.Request, f filter.File, mask uint8) (filter.Stream, error) {
	var s filter.Stream
	for k, i := range c.data {
		if mask&(1<<k) == 0 {
			continue
		}
		x := c.rules[i]
		var under filter.File = f
		if s != nil {
			under = streamFile{s, f}
		}
		next, err := x.data.Open(r, under)
		if err != nil {
			if s != nil {
				s.Close()
			}
			x.count(countError)
			return nil, fmt.Errorf("rule %s: %w", x.Name, err)
		}
		x.count(countData)
		s = next
	}
	if s == nil {
		return nil, syscall.EINVAL
	}
	return s, nil
}

// streamFile presents a stream as the file of the next data filter.
type streamFile struct {
	filter.Stream
	f filter.File
}

func (s streamFile) Size() (int64, error)             { return s.f.Size() }
func (s streamFile) Version() (filter.Version, error) { return s.f.Version() }

// DependsOnCaller reports whether the answers for path may differ by
// caller: a rule with a condition that covers the path, or a filter that
// says so. The kernel must not cache such answers for everyone.
func (c *Chain) DependsOnCaller(path string) bool {
	for _, x := range c.rules {
		if x.dependent != nil && x.dependent.DependsOnCaller(path) {
			return true
		}
		if !x.When.IsZero() && (x.scoped == nil || x.scoped.Covers(path)) {
			return true
		}
	}
	return false
}

// ListingCacheable reports whether the kernel may keep the listing of the
// directory dir (its view path) and show it to every caller: no rule that
// may act beneath dir judges entries or lookups differently for different
// callers, and none observes the lookups a listing makes (a post-filter of
// lookup must see every node the kernel learns of).
func (c *Chain) ListingCacheable(dir string) bool {
	for _, x := range c.rules {
		if below, ok := x.Filter.(filter.ScopedBelow); ok && !below.CoversBelow(dir) {
			continue
		}
		if x.post != nil && x.ops.Has(filter.OpLookup) {
			return false
		}
		judges := x.dir != nil || x.pre != nil && x.ops.Has(filter.OpLookup)
		if judges && (!x.When.IsZero() || x.dependent != nil) {
			return false
		}
	}
	return true
}

// MayDropBelow reports whether the view of the directory dir (its view
// path) may lack, for some caller, an entry the lower directory has: a rule
// that may act beneath dir drops listing entries, maps names (a name mapper
// hides collisions) or judges lookups. The link count of such a directory
// is not shown as the lower tree has it (see the dispatcher's present).
func (c *Chain) MayDropBelow(dir string) bool {
	for _, x := range c.rules {
		judges := x.dir != nil || x.names != nil || (x.pre != nil || x.post != nil) && x.ops.Has(filter.OpLookup)
		if !judges {
			continue
		}
		if below, ok := x.Filter.(filter.ScopedBelow); !ok || below.CoversBelow(dir) {
			return true
		}
	}
	return false
}

// Stats returns each rule's decision counts.
func (c *Chain) Stats() []filter.RuleStats {
	out := make([]filter.RuleStats, 0, c.Len())
	if c == nil {
		return out
	}
	for _, x := range c.rules {
		st := filter.RuleStats{Rule: x.Name, Decisions: map[filter.Decision]uint64{}}
		for d, kind := range decisionKinds {
			if n := x.counts[d].Load(); n > 0 {
				st.Decisions[kind] = n
			}
		}
		if own, ok := x.Filter.(filter.DecisionCounter); ok {
			for kind, n := range own.Decisions() {
				if n > 0 {
					st.Decisions[kind] += n
				}
			}
		}
		out = append(out, st)
	}
	return out
}
