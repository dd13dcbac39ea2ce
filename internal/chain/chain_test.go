package chain

import (
	"github.com/sievefs/sievefs/filter"

	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// journal records the calls of test filters, in order.
type journal struct {
	mu    sync.Mutex
	calls []string
}

func (j *journal) add(s string) {
	j.mu.Lock()
	j.calls = append(j.calls, s)
	j.mu.Unlock()
}

func (j *journal) take() []string {
	j.mu.Lock()
	defer j.mu.Unlock()
	out := j.calls
	j.calls = nil
	return out
}

// preFilter records Pre calls and returns err.
type preFilter struct {
	name string
	j    *journal
	err  error
}

func (f *preFilter) Kind() string { return "pre" }
func (f *preFilter) Pre(r *filter.Request) error {
	f.j.add("pre " + f.name)
	return f.err
}

// postFilter records Post calls and returns what out makes of the result.
type postFilter struct {
	name string
	j    *journal
	out  func(error) error
}

func (f *postFilter) Kind() string { return "post" }
func (f *postFilter) Post(r *filter.Request, err error) error {
	f.j.add(fmt.Sprintf("post %s %v", f.name, err))
	if f.out == nil {
		return err
	}
	return f.out(err)
}

// prePost is both.
type prePost struct {
	preFilter
	postFilter
}

func (f *prePost) Kind() string { return "prepost" }

// attrFilter sets the uid, records the order.
type attrFilter struct {
	name string
	j    *journal
	uid  uint32
}

func (f *attrFilter) Kind() string { return "attr" }
func (f *attrFilter) Attr(r *filter.Request, path string, a *filter.Attr) bool {
	f.j.add("attr " + f.name)
	if a.Uid == f.uid {
		return false
	}
	a.Uid = f.uid
	return true
}

// dirFilter drops entries whose name has a prefix.
type dirFilter struct {
	name, prefix string
	j            *journal
}

func (f *dirFilter) Kind() string { return "dir" }
func (f *dirFilter) Keep(r *filter.Request, e *filter.DirEntry) bool {
	f.j.add("keep " + f.name)
	return !strings.HasPrefix(e.Name, f.prefix)
}

// suffixMapper shows lower names ending in from as ending in to, refusing
// view names ending in from and hiding lower names ending in to.
type suffixMapper struct{ from, to string }

func (m *suffixMapper) Kind() string { return "suffix" }
func (m *suffixMapper) LowerName(dir, name string) (string, error) {
	if stem, ok := strings.CutSuffix(name, m.to); ok {
		return stem + m.from, nil
	}
	if strings.HasSuffix(name, m.from) {
		return "", syscall.ENOENT
	}
	return name, nil
}
func (m *suffixMapper) ViewName(dir, lower string) (string, bool) {
	if stem, ok := strings.CutSuffix(lower, m.from); ok {
		return stem + m.to, true
	}
	if strings.HasSuffix(lower, m.to) {
		return "", false
	}
	return lower, true
}

// dataFilter claims files under a prefix; its stream upper-cases (or
// records) reads of the file under it.
type dataFilter struct {
	prefix  string
	tag     string
	openErr error
	opened  *[]string
}

func (f *dataFilter) Kind() string { return "data" }
func (f *dataFilter) Claims(r *filter.Request) bool {
	return strings.HasPrefix(r.Path, f.prefix)
}
func (f *dataFilter) Open(r *filter.Request, file filter.File) (filter.Stream, error) {
	if f.openErr != nil {
		return nil, f.openErr
	}
	if f.opened != nil {
		*f.opened = append(*f.opened, f.tag)
	}
	return &tagStream{tag: f.tag, under: file}, nil
}

// tagStream prefixes what it reads with its tag; it reads the file under it
// from offset 0.
type tagStream struct {
	tag    string
	under  io.ReaderAt
	closed bool
}

func (s *tagStream) ReadAt(p []byte, off int64) (int, error) {
	buf := make([]byte, 64)
	n, err := s.under.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return 0, err
	}
	out := append([]byte(s.tag), buf[:n]...)
	return copy(p, out), io.EOF
}
func (s *tagStream) WriteAt(p []byte, off int64) (int, error) { return 0, syscall.EROFS }
func (s *tagStream) Close() error                             { s.closed = true; return nil }

// memFile is a File over a byte slice.
type memFile struct{ data []byte }

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	return bytes.NewReader(m.data).ReadAt(p, off)
}
func (m *memFile) WriteAt(p []byte, off int64) (int, error) { return 0, syscall.EROFS }
func (m *memFile) Size() (int64, error)                     { return int64(len(m.data)), nil }
func (m *memFile) Version() (filter.Version, error)         { return filter.Version{Ino: 7}, nil }

// scopedDependent says which paths it covers and which depend on the
// caller.
type scopedDependent struct {
	preFilter
	covers, dependent string
}

func (f *scopedDependent) Covers(path string) bool { return strings.HasPrefix(path, f.covers) }
func (f *scopedDependent) DependsOnCaller(path string) bool {
	return f.dependent != "" && path == f.dependent
}

// kindOnly implements no family.
type kindOnly struct{}

func (kindOnly) Kind() string { return "nothing" }

func mustChain(t *testing.T, rules ...filter.Rule) *Chain {
	t.Helper()
	c, err := New(rules...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func stats(c *Chain) map[string]map[filter.Decision]uint64 {
	out := map[string]map[filter.Decision]uint64{}
	for _, s := range c.Stats() {
		out[s.Rule] = s.Decisions
	}
	return out
}

func TestRuleOrder(t *testing.T) {
	j := &journal{}
	c := mustChain(t,
		filter.Rule{Filter: &prePost{preFilter{"1", j, nil}, postFilter{"1", j, nil}}},
		filter.Rule{Filter: &preFilter{"2", j, nil}},
		filter.Rule{Filter: &postFilter{"3", j, nil}},
		filter.Rule{Filter: &prePost{preFilter{"4", j, nil}, postFilter{"4", j, nil}}},
	)
	r := &filter.Request{Op: filter.OpOpen, Path: "f"}
	if err := c.Pre(r); err != nil {
		t.Fatal(err)
	}
	if err := c.Post(r, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{"pre 1", "pre 2", "pre 4", "post 4 <nil>", "post 3 <nil>", "post 1 <nil>"}
	if got := j.take(); !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
	if !c.HasPost() || c.HasAttr() || c.HasDir() || c.MapsNames() || c.HasData() {
		t.Error("Has* wrong for a chain of pre- and post-filters")
	}
	if c.Len() != 4 {
		t.Errorf("Len() = %d", c.Len())
	}
	var names []string
	for _, r := range c.Rules() {
		names = append(names, r.Name)
	}
	if want := []string{"1:prepost", "2:pre", "3:post", "4:prepost"}; !slices.Equal(names, want) {
		t.Errorf("rule names %q, want %q", names, want)
	}
}

func TestRuleNameKept(t *testing.T) {
	j := &journal{}
	c := mustChain(t, filter.Rule{Name: "mine", Filter: &preFilter{"1", j, syscall.EPERM}})
	c.Pre(&filter.Request{})
	if s := stats(c); s["mine"][filter.DecisionError] != 1 {
		t.Errorf("stats %v", s)
	}
}

func TestPostRewritesInReverse(t *testing.T) {
	j := &journal{}
	c := mustChain(t,
		filter.Rule{Filter: &postFilter{"outer", j, func(err error) error {
			if err == syscall.ENOENT {
				return syscall.EACCES
			}
			return err
		}}},
		filter.Rule{Filter: &postFilter{"inner", j, func(err error) error {
			if err == nil {
				return syscall.ENOENT
			}
			return err
		}}},
		filter.Rule{Filter: &postFilter{"last", j, func(err error) error {
			if err == syscall.EIO {
				return nil
			}
			return err
		}}},
	)
	if err := c.Post(&filter.Request{}, syscall.EIO); err != syscall.EACCES {
		t.Errorf("Post = %v, want EACCES", err)
	}
	want := []string{"post last input/output error", "post inner <nil>", "post outer no such file or directory"}
	if got := j.take(); !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
	s := stats(c)
	if s["3:post"][filter.DecisionRewrite] != 1 || s["2:post"][filter.DecisionError] != 1 || s["1:post"][filter.DecisionError] != 1 {
		t.Errorf("stats %v", s)
	}
}

func TestPreErrorStopsChain(t *testing.T) {
	j := &journal{}
	c := mustChain(t,
		filter.Rule{Filter: &preFilter{"1", j, nil}},
		filter.Rule{Filter: &preFilter{"2", j, syscall.EACCES}},
		filter.Rule{Filter: &preFilter{"3", j, nil}},
	)
	if err := c.Pre(&filter.Request{}); err != syscall.EACCES {
		t.Errorf("Pre = %v, want EACCES", err)
	}
	if got, want := j.take(), []string{"pre 1", "pre 2"}; !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
	if s := stats(c); s["2:pre"][filter.DecisionError] != 1 || len(s["1:pre"]) != 0 || len(s["3:pre"]) != 0 {
		t.Errorf("stats %v", s)
	}
}

func TestAnswered(t *testing.T) {
	j := &journal{}
	c := mustChain(t,
		filter.Rule{Filter: &preFilter{"1", j, fmt.Errorf("wrapped: %w", filter.ErrAnswered)}},
		filter.Rule{Filter: &preFilter{"2", j, nil}},
	)
	if err := c.Pre(&filter.Request{}); err != filter.ErrAnswered {
		t.Errorf("Pre = %v, want ErrAnswered itself", err)
	}
	if got, want := j.take(), []string{"pre 1"}; !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
	if s := stats(c); s["1:pre"][filter.DecisionAnswer] != 1 || s["1:pre"][filter.DecisionError] != 0 {
		t.Errorf("stats %v", s)
	}
}

func TestConditions(t *testing.T) {
	j := &journal{}
	c := mustChain(t,
		filter.Rule{Name: "only-uid", Filter: &preFilter{"only-uid", j, nil}, When: filter.Condition{Only: &filter.Callers{Uids: []uint32{1000}}}},
		filter.Rule{Name: "only-gid", Filter: &preFilter{"only-gid", j, nil}, When: filter.Condition{Only: &filter.Callers{Gids: []uint32{50}}}},
		filter.Rule{Name: "unless-uid", Filter: &preFilter{"unless-uid", j, nil}, When: filter.Condition{Unless: &filter.Callers{Uids: []uint32{0}}}},
		filter.Rule{Name: "unless-gid", Filter: &preFilter{"unless-gid", j, nil}, When: filter.Condition{Unless: &filter.Callers{Gids: []uint32{0, 10}}}},
		filter.Rule{Name: "both", Filter: &postFilter{"both", j, nil}, When: filter.Condition{
			Only:   &filter.Callers{Uids: []uint32{1000, 1001}},
			Unless: &filter.Callers{Gids: []uint32{50}},
		}},
		filter.Rule{Name: "empty-only", Filter: &preFilter{"empty-only", j, nil}, When: filter.Condition{Only: &filter.Callers{}}},
	)
	for _, tc := range []struct {
		caller filter.Caller
		want   []string
	}{
		{filter.Caller{Uid: 1000, Gid: 100}, []string{"pre only-uid", "pre unless-uid", "pre unless-gid", "post both <nil>"}},
		{filter.Caller{Uid: 1000, Gid: 50}, []string{"pre only-uid", "pre only-gid", "pre unless-uid", "pre unless-gid"}},
		{filter.Caller{Uid: 1001, Gid: 10}, []string{"pre unless-uid", "post both <nil>"}},
		{filter.Caller{Uid: 0, Gid: 0}, nil},
		{filter.Caller{Uid: 5, Gid: 50}, []string{"pre only-gid", "pre unless-uid", "pre unless-gid"}},
	} {
		r := &filter.Request{Caller: tc.caller}
		c.Pre(r)
		c.Post(r, nil)
		if got := j.take(); !slices.Equal(got, tc.want) {
			t.Errorf("caller %+v: calls %q, want %q", tc.caller, got, tc.want)
		}
	}
	if !(filter.Condition{}).IsZero() || (filter.Condition{Only: &filter.Callers{}}).IsZero() || (filter.Condition{Unless: &filter.Callers{}}).IsZero() {
		t.Error("IsZero wrong")
	}
	if !(filter.Condition{}).Applies(filter.Caller{Uid: 12}) {
		t.Error("the zero condition does not apply to everyone")
	}
}

func TestConditionsOnOtherFamilies(t *testing.T) {
	j := &journal{}
	only := filter.Condition{Only: &filter.Callers{Uids: []uint32{7}}}
	c := mustChain(t,
		filter.Rule{Filter: &attrFilter{"a", j, 99}, When: only},
		filter.Rule{Filter: &dirFilter{"d", "x", j}, When: only},
		filter.Rule{Filter: &dataFilter{prefix: "data/"}, When: only},
	)
	for _, uid := range []uint32{7, 8} {
		r := &filter.Request{Caller: filter.Caller{Uid: uid}, Path: "data/f"}
		a := filter.Attr{Uid: 1}
		c.Attr(r, r.Path, &a)
		keep := c.Keep(r, &filter.DirEntry{Name: "xy", Path: "xy"})
		mask := c.Claims(r)
		if uid == 7 && (a.Uid != 99 || keep || mask != 1) {
			t.Errorf("uid 7: attr uid %d, keep %v, claims %b; the rules should apply", a.Uid, keep, mask)
		}
		if uid == 8 && (a.Uid != 1 || !keep || mask != 0) {
			t.Errorf("uid 8: attr uid %d, keep %v, claims %b; the rules should not apply", a.Uid, keep, mask)
		}
	}
}

func TestAttrAndKeepOrder(t *testing.T) {
	j := &journal{}
	c := mustChain(t,
		filter.Rule{Filter: &attrFilter{"1", j, 1}},
		filter.Rule{Filter: &attrFilter{"2", j, 2}},
		filter.Rule{Filter: &dirFilter{"1", "a", j}},
		filter.Rule{Filter: &dirFilter{"2", "b", j}},
	)
	r := &filter.Request{}
	a := filter.Attr{Uid: 2}
	c.Attr(r, "p", &a)
	// Reverse order: rule 2 first (no change), then rule 1 (last word).
	if a.Uid != 1 {
		t.Errorf("uid %d, want the first rule's 1", a.Uid)
	}
	if got, want := j.take(), []string{"attr 2", "attr 1"}; !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
	if c.Keep(r, &filter.DirEntry{Name: "b1"}) {
		t.Error("b1 kept")
	}
	if got, want := j.take(), []string{"keep 2"}; !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q: a dropped entry asks no further rule", got, want)
	}
	if c.Keep(r, &filter.DirEntry{Name: "a1"}) || !c.Keep(r, &filter.DirEntry{Name: "c"}) {
		t.Error("Keep wrong")
	}
	s := stats(c)
	if s["1:attr"][filter.DecisionRewrite] != 1 || s["2:attr"][filter.DecisionRewrite] != 0 {
		t.Errorf("attr stats %v", s)
	}
	if s["3:dir"][filter.DecisionDrop] != 1 || s["4:dir"][filter.DecisionDrop] != 1 {
		t.Errorf("dir stats %v", s)
	}
}

func TestNameMappersComposed(t *testing.T) {
	// Names go from the view to the lower tree through the mappers in rule
	// order (like pre-filters) and back in reverse: rule 1 maps the view's
	// .a to .b, rule 2 that .b to the lower tree's .c.
	c := mustChain(t,
		filter.Rule{Filter: &suffixMapper{from: ".b", to: ".a"}},
		filter.Rule{Filter: &suffixMapper{from: ".c", to: ".b"}},
	)
	if !c.MapsNames() {
		t.Fatal("MapsNames() = false")
	}
	for _, tc := range []struct {
		view, lower string
		err         error
	}{
		{"x.a", "x.c", nil},
		{"plain", "plain", nil},
		{"x.b", "", syscall.ENOENT}, // refused by rule 1
		{"x.c", "", syscall.ENOENT}, // refused by rule 2
	} {
		lower, err := c.LowerName("d", tc.view)
		if lower != tc.lower || err != tc.err {
			t.Errorf("LowerName(%q) = %q, %v; want %q, %v", tc.view, lower, err, tc.lower, tc.err)
		}
	}
	for _, tc := range []struct {
		lower, view string
		ok          bool
	}{
		{"x.c", "x.a", true},
		{"plain", "plain", true},
		{"x.b", "", false}, // hidden by rule 2 (would collide)
		{"x.a", "", false}, // hidden by rule 1
	} {
		view, ok := c.ViewName("d", tc.lower)
		if view != tc.view || ok != tc.ok {
			t.Errorf("ViewName(%q) = %q, %v; want %q, %v", tc.lower, view, ok, tc.view, tc.ok)
		}
	}
	for _, n := range []string{"x.a", "plain", "y.z.a", ".a"} {
		lower, err := c.LowerName("", n)
		if err != nil {
			t.Fatal(err)
		}
		if back, ok := c.ViewName("", lower); !ok || back != n {
			t.Errorf("ViewName(LowerName(%q)) = %q, %v", n, back, ok)
		}
	}
	s := stats(c)
	if s["1:suffix"][filter.DecisionRename] == 0 || s["2:suffix"][filter.DecisionRename] == 0 {
		t.Errorf("rename stats %v", s)
	}
	if s["1:suffix"][filter.DecisionError] != 1 || s["2:suffix"][filter.DecisionError] != 1 {
		t.Errorf("error stats %v", s)
	}
	if s["1:suffix"][filter.DecisionDrop] != 1 || s["2:suffix"][filter.DecisionDrop] != 1 {
		t.Errorf("drop stats %v", s)
	}
}

func TestDataClaimsAndOpen(t *testing.T) {
	var opened []string
	j := &journal{}
	rules := []filter.Rule{
		{Filter: &dataFilter{prefix: "a/", tag: "A", opened: &opened}},
		{Filter: &preFilter{"not data", j, nil}},
		{Filter: &dataFilter{prefix: "a/b/", tag: "B", opened: &opened}},
		{Filter: &dataFilter{prefix: "c/", tag: "C", opened: &opened}},
	}
	c := mustChain(t, rules...)
	if !c.HasData() {
		t.Fatal("HasData() = false")
	}
	for _, tc := range []struct {
		path string
		mask uint8
	}{
		{"a/x", 0b001},
		{"a/b/x", 0b011},
		{"c/x", 0b100},
		{"d/x", 0},
	} {
		if got := c.Claims(&filter.Request{Path: tc.path}); got != tc.mask {
			t.Errorf("Claims(%q) = %03b, want %03b", tc.path, got, tc.mask)
		}
	}
	f := &memFile{data: []byte("data")}
	s, err := c.Open(&filter.Request{Path: "a/b/x"}, f, 0b011)
	if err != nil {
		t.Fatal(err)
	}
	// Rule order: A over the file, then B over A.
	if !slices.Equal(opened, []string{"A", "B"}) {
		t.Errorf("opened %q, want A then B", opened)
	}
	buf := make([]byte, 64)
	n, _ := s.ReadAt(buf, 0)
	if got := string(buf[:n]); got != "BAdata" {
		t.Errorf("read %q, want BAdata", got)
	}
	s.Close()
	if _, err := c.Open(&filter.Request{}, f, 0); err != syscall.EINVAL {
		t.Errorf("Open with an empty mask = %v, want EINVAL", err)
	}
	st := stats(c)
	if st["1:data"][filter.DecisionData] != 1 || st["3:data"][filter.DecisionData] != 1 || st["4:data"][filter.DecisionData] != 0 {
		t.Errorf("data stats %v", st)
	}
}

func TestDataOpenErrorClosesStreams(t *testing.T) {
	var opened []string
	first := &dataFilter{prefix: "", tag: "A", opened: &opened}
	var made *tagStream
	wrap := &wrapData{dataFilter: first, made: &made}
	c := mustChain(t,
		filter.Rule{Filter: wrap},
		filter.Rule{Filter: &dataFilter{prefix: "", tag: "B", openErr: syscall.ENOMEM}},
	)
	_, err := c.Open(&filter.Request{}, &memFile{}, 0b11)
	if !errors.Is(err, syscall.ENOMEM) || !strings.Contains(err.Error(), "2:data") {
		t.Errorf("Open = %v, want ENOMEM naming the rule", err)
	}
	if made == nil || !made.closed {
		t.Error("the first rule's stream was not closed")
	}
	if s := stats(c); s["2:data"][filter.DecisionError] != 1 {
		t.Errorf("stats %v", s)
	}
}

// wrapData keeps the stream it makes.
type wrapData struct {
	*dataFilter
	made **tagStream
}

func (w *wrapData) Open(r *filter.Request, f filter.File) (filter.Stream, error) {
	s, err := w.dataFilter.Open(r, f)
	if err == nil {
		*w.made = s.(*tagStream)
	}
	return s, err
}

func TestMaskBitsPerDataRule(t *testing.T) {
	var rules []filter.Rule
	for i := range filter.MaxDataRules {
		rules = append(rules, filter.Rule{Filter: &dataFilter{prefix: fmt.Sprintf("%d/", i)}})
	}
	c := mustChain(t, rules...)
	for i := range filter.MaxDataRules {
		if got := c.Claims(&filter.Request{Path: fmt.Sprintf("%d/f", i)}); got != 1<<i {
			t.Errorf("rule %d claims with mask %08b", i, got)
		}
	}
}

func TestDependsOnCaller(t *testing.T) {
	j := &journal{}
	cond := filter.Condition{Only: &filter.Callers{Uids: []uint32{1}}}
	for _, tc := range []struct {
		name  string
		rules []filter.Rule
		path  string
		want  bool
	}{
		{"no condition", []filter.Rule{{Filter: &preFilter{"p", j, nil}}}, "x", false},
		{"unscoped condition", []filter.Rule{{Filter: &preFilter{"p", j, nil}, When: cond}}, "x", true},
		{"scoped condition, covered", []filter.Rule{{Filter: &scopedDependent{covers: "sec"}, When: cond}}, "sec/x", true},
		{"scoped condition, not covered", []filter.Rule{{Filter: &scopedDependent{covers: "sec"}, When: cond}}, "pub/x", false},
		{"filter says so", []filter.Rule{{Filter: &scopedDependent{covers: "none", dependent: "x"}}}, "x", true},
		{"filter says not", []filter.Rule{{Filter: &scopedDependent{covers: "none", dependent: "x"}}}, "y", false},
		{"any rule", []filter.Rule{
			{Filter: &preFilter{"p", j, nil}},
			{Filter: &scopedDependent{covers: "sec"}, When: filter.Condition{Unless: &filter.Callers{Gids: []uint32{0}}}},
		}, "sec", true},
	} {
		c := mustChain(t, tc.rules...)
		if got := c.DependsOnCaller(tc.path); got != tc.want {
			t.Errorf("%s: DependsOnCaller(%q) = %v, want %v", tc.name, tc.path, got, tc.want)
		}
	}
}

func TestNewChainErrors(t *testing.T) {
	var tooMany []filter.Rule
	for range filter.MaxDataRules + 1 {
		tooMany = append(tooMany, filter.Rule{Filter: &dataFilter{}})
	}
	for _, tc := range []struct {
		name  string
		rules []filter.Rule
		want  string
	}{
		{"nil filter", []filter.Rule{{}}, "no filter"},
		{"no family", []filter.Rule{{Filter: kindOnly{}}}, "no filter family"},
		{"mapper with only", []filter.Rule{{Filter: &suffixMapper{".x", ".y"}, When: filter.Condition{Only: &filter.Callers{Uids: []uint32{1}}}}}, "name mapper"},
		{"mapper with unless", []filter.Rule{{Filter: &suffixMapper{".x", ".y"}, When: filter.Condition{Unless: &filter.Callers{}}}}, "name mapper"},
		{"too many data rules", tooMany, "at most"},
	} {
		c, err := New(tc.rules...)
		if err == nil {
			t.Errorf("%s: New succeeded with %d rules", tc.name, c.Len())
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q, want it to say %q", tc.name, err, tc.want)
		}
	}
	if _, err := New(tooMany[:filter.MaxDataRules]...); err != nil {
		t.Errorf("New with %d data rules: %v", filter.MaxDataRules, err)
	}
	if c, err := New(); err != nil || c.Len() != 0 {
		t.Errorf("empty chain: %v, %v", c, err)
	}
}

func TestNilChain(t *testing.T) {
	var c *Chain
	if c.Len() != 0 || len(c.Stats()) != 0 {
		t.Error("a nil chain is not empty")
	}
}

func TestStatsCountEveryKind(t *testing.T) {
	j := &journal{}
	c := mustChain(t,
		filter.Rule{Name: "err", Filter: &preFilter{"e", j, syscall.EPERM}, When: filter.Condition{Only: &filter.Callers{Uids: []uint32{1}}}},
		filter.Rule{Name: "answer", Filter: &preFilter{"a", j, filter.ErrAnswered}, When: filter.Condition{Only: &filter.Callers{Uids: []uint32{2}}}},
		filter.Rule{Name: "rewrite", Filter: &postFilter{"r", j, func(error) error { return nil }}},
		filter.Rule{Name: "drop", Filter: &dirFilter{"d", "x", j}},
		filter.Rule{Name: "data", Filter: &dataFilter{}},
		filter.Rule{Name: "rename", Filter: &suffixMapper{".c", ".b"}},
	)
	for range 2 {
		c.Pre(&filter.Request{Caller: filter.Caller{Uid: 1}})
	}
	c.Pre(&filter.Request{Caller: filter.Caller{Uid: 2}})
	c.Pre(&filter.Request{Caller: filter.Caller{Uid: 3}}) // nothing
	c.Post(&filter.Request{}, syscall.EIO)
	c.Post(&filter.Request{}, nil) // no change, not counted
	c.Keep(&filter.Request{}, &filter.DirEntry{Name: "x1"})
	c.Keep(&filter.Request{}, &filter.DirEntry{Name: "y1"})
	s, err := c.Open(&filter.Request{}, &memFile{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	c.LowerName("", "a.b")
	c.LowerName("", "plain")
	want := map[string]map[filter.Decision]uint64{
		"err":     {filter.DecisionError: 2},
		"answer":  {filter.DecisionAnswer: 1},
		"rewrite": {filter.DecisionRewrite: 1},
		"drop":    {filter.DecisionDrop: 1},
		"data":    {filter.DecisionData: 1},
		"rename":  {filter.DecisionRename: 1},
	}
	got := stats(c)
	for rule, w := range want {
		if fmt.Sprint(got[rule]) != fmt.Sprint(w) {
			t.Errorf("rule %s: decisions %v, want %v", rule, got[rule], w)
		}
	}
	// Stats lists every rule, in order, even those with no decisions.
	var order []string
	for _, st := range c.Stats() {
		order = append(order, st.Rule)
	}
	if want := []string{"err", "answer", "rewrite", "drop", "data", "rename"}; !slices.Equal(order, want) {
		t.Errorf("Stats order %q, want %q", order, want)
	}
}

func TestConcurrentChain(t *testing.T) {
	j := &journal{}
	c := mustChain(t,
		filter.Rule{Filter: &preFilter{"e", j, syscall.EPERM}},
		filter.Rule{Filter: &dirFilter{"d", "x", j}},
	)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 500 {
				c.Pre(&filter.Request{})
				c.Keep(&filter.Request{}, &filter.DirEntry{Name: "x"})
			}
		})
	}
	wg.Wait()
	s := stats(c)
	if s["1:pre"][filter.DecisionError] != 4000 || s["2:dir"][filter.DecisionDrop] != 4000 {
		t.Errorf("stats %v, want 4000 of each", s)
	}
}

func TestRequestModifies(t *testing.T) {
	for _, tc := range []struct {
		op    filter.Op
		flags int
		want  bool
	}{
		{filter.OpOpen, syscall.O_RDONLY, false},
		{filter.OpOpen, syscall.O_RDONLY | syscall.O_NOFOLLOW | syscall.O_CLOEXEC, false},
		{filter.OpOpen, syscall.O_WRONLY, true},
		{filter.OpOpen, syscall.O_RDWR, true},
		{filter.OpOpen, syscall.O_RDONLY | syscall.O_TRUNC, true},
		{filter.OpOpen, syscall.O_WRONLY | syscall.O_APPEND, true},
		{filter.OpCreate, syscall.O_RDONLY, true},
		{filter.OpTmpfile, syscall.O_RDWR, true},
		{filter.OpGetattr, 0, false},
		{filter.OpLookup, 0, false},
		{filter.OpReadlink, 0, false},
		{filter.OpGetxattr, 0, false},
		{filter.OpListxattr, 0, false},
		{filter.OpAccess, 0, false},
		{filter.OpOpendir, 0, false},
		{filter.OpSetattr, 0, true},
		{filter.OpSetxattr, 0, true},
		{filter.OpRemovexattr, 0, true},
		{filter.OpMknod, 0, true},
		{filter.OpMkdir, 0, true},
		{filter.OpUnlink, 0, true},
		{filter.OpRmdir, 0, true},
		{filter.OpRename, 0, true},
		{filter.OpLink, 0, true},
		{filter.OpSymlink, 0, true},
	} {
		r := &filter.Request{Op: tc.op, Flags: tc.flags}
		if got := r.Modifies(); got != tc.want {
			t.Errorf("%s flags %#o: Modifies() = %v, want %v", tc.op, tc.flags, got, tc.want)
		}
	}
}

func TestOpNames(t *testing.T) {
	names := filter.OpNames()
	if len(names) != int(filter.NumOps) {
		t.Fatalf("%d names for %d operations", len(names), filter.NumOps)
	}
	seen := map[string]bool{}
	for i, n := range names {
		if n == "" || seen[n] {
			t.Errorf("operation %d: name %q empty or repeated", i, n)
		}
		seen[n] = true
		o, ok := filter.ParseOp(n)
		if !ok || o != filter.Op(i) || o.String() != n {
			t.Errorf("ParseOp(%q) = %v, %v", n, o, ok)
		}
	}
	if _, ok := filter.ParseOp("nope"); ok {
		t.Error("ParseOp of an unknown name succeeded")
	}
	if filter.NumOps.String() != "unknown" {
		t.Errorf("NumOps.String() = %q", filter.NumOps.String())
	}
	for _, o := range []filter.Op{filter.OpRead, filter.OpWrite, filter.OpReaddir, filter.OpRelease, filter.OpFlush} {
		if o.Filtered() {
			t.Errorf("%s is filtered", o)
		}
	}
	for _, o := range []filter.Op{filter.OpLookup, filter.OpOpen, filter.OpCreate, filter.OpRename, filter.OpGetattr, filter.OpOpendir} {
		if !o.Filtered() {
			t.Errorf("%s is not filtered", o)
		}
	}
}
