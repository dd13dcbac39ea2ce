// Package audit is the filter that records operations in a JSON-lines log.
//
// Each recorded operation is one line holding one JSON object:
//
//	{"time":"2024-05-01T12:00:00.123456789Z","op":"rename","path":"a/b","new_path":"c","uid":1000,"gid":1000,"pid":4242,"errno":0}
//	{"time":"2024-05-01T12:00:00.200000000Z","op":"open","path":"secrets/key","access":"read","flags":"O_RDONLY|O_LARGEFILE","uid":1000,"gid":1000,"pid":4242,"errno":13,"error":"EACCES"}
//
// The keys are:
//
//   - "time": when the operation ended, RFC 3339 in UTC with nine digits of
//     fractional seconds (lines sort as strings);
//   - "op": the operation's name, as in policy files (filter.Op.String);
//   - "path": the path of the node relative to the mount root ("" for the
//     root);
//   - "new_path": for rename and link only, the destination;
//   - "access", "flags": for open, create and tmpfile only, the access mode
//     ("read", "write" or "read-write") and the open(2) flags the kernel
//     passed on, as strace writes them ("O_WRONLY|O_APPEND"; the kernel
//     drops O_CREAT, O_EXCL and O_NOCTTY from an open of a file that
//     exists, and O_TRUNC unless it leaves truncating to the daemon);
//   - "uid", "gid", "pid": the caller;
//   - "errno": 0 on success, else the errno number the kernel got;
//   - "error": the errno's name ("ENOENT"), omitted on success.
//
// Names may hold any bytes but JSON strings hold Unicode text. A path that
// is valid UTF-8 is written as a JSON string (control characters, quotes
// and backslashes escaped, so that decoding gives the exact bytes back). A
// path that is not valid UTF-8 is written under "path_b64" instead of
// "path", as the standard base64 encoding (with padding) of its raw bytes;
// the same goes for "new_path" and "new_path_b64". A reader decodes
// whichever of the two keys a line has.
//
// Each line is written with a single write(2) call to a descriptor opened
// with O_APPEND, without buffering in the daemon: lines of concurrent
// operations, and of several filters or daemons sharing a log, never
// interleave, and a line is in the kernel before the operation's reply is
// sent, so a crash of the daemon loses no line of an operation the client
// saw complete (a crash of the machine may lose what the kernel had not yet
// written to disk: the log is not fsynced). A failed or short write is
// counted (Filter.Errors) and never changes the operation's result, which
// has already happened; a short write is followed by a newline so that the
// torn line does not glue the next one to it. Lines written and lines
// lost are the rule's decisions record and record_failed.
//
// Filters of one process writing to the same log file share one open
// descriptor (a registry keyed by the file's device and inode, with
// reference counts): a policy reload that keeps the log keeps writing to
// the same descriptor, and closing the old policy's filter leaves it open.
// A log rotated away (renamed) is reopened under its path by the next
// filter made for it.
package audit

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/sievefs/sievefs/filter"
)

// Config says what the filter records and where.
type Config struct {
	// Ops are the operations recorded; empty means every operation that
	// goes through the filter chain (filter.Op.Filtered).
	Ops []filter.Op
	// Paths are the globs recorded; nil means every path. A rename or link
	// is recorded when its source or its destination matches.
	Paths filter.Patterns
	// Log is the absolute path of the JSON-lines log.
	Log string
}

// Filter records the operations it matches once they are done.
type Filter struct {
	c      Config
	ops    [filter.NumOps]bool
	log    *logFile
	lines  atomic.Uint64
	errs   atomic.Uint64
	closed atomic.Bool
}

var (
	_ filter.PostFilter      = (*Filter)(nil)
	_ filter.OpScoped        = (*Filter)(nil)
	_ filter.DecisionCounter = (*Filter)(nil)
)

// New opens the log of c and returns the filter. It creates the log with
// mode 0600, and its missing directories with mode 0700, if need be. Ops must be operations that go through the chain.
func New(c Config) (*Filter, error) {
	if !filepath.IsAbs(c.Log) {
		return nil, fmt.Errorf("audit log %q: want an absolute path", c.Log)
	}
	f := &Filter{c: c}
	f.c.Ops = append([]filter.Op(nil), c.Ops...)
	for _, o := range c.Ops {
		if o >= filter.NumOps {
			return nil, fmt.Errorf("audit: unknown operation %d", o)
		}
		if !o.Filtered() {
			return nil, fmt.Errorf("audit: %s is not filtered (file data and operations on open files do not go through the filters); audit the open instead", o)
		}
		f.ops[o] = true
	}
	if len(c.Ops) == 0 {
		for o := range filter.NumOps {
			f.ops[o] = o.Filtered()
		}
	}
	l, err := openLog(c.Log)
	if err != nil {
		return nil, err
	}
	f.log = l
	return f, nil
}

// Sees returns the operations recorded: the chain shows the filter no other.
func (f *Filter) Sees() filter.OpSet {
	var s filter.OpSet
	for o, on := range f.ops {
		if on {
			s |= filter.Ops(filter.Op(o))
		}
	}
	return s
}

// Kind returns "audit".
func (f *Filter) Kind() string { return "audit" }

// Config returns what the filter records.
func (f *Filter) Config() Config { return f.c }

// Errors returns how many lines could not be written, or were written only
// in part.
func (f *Filter) Errors() uint64 { return f.errs.Load() }

// Decisions counts the lines written (record) and those that could not be
// (record_failed), for the rule's counts in status and metrics.
func (f *Filter) Decisions() map[filter.Decision]uint64 {
	return map[filter.Decision]uint64{filter.DecisionRecord: f.lines.Load(), filter.DecisionRecordFailed: f.errs.Load()}
}

// Close drops the filter's reference to its log; the log is closed when no
// filter holds it. Operations still in flight through the filter are
// recorded as long as the log is open, and counted as errors once it is
// not. Close is idempotent.
func (f *Filter) Close() error {
	if f.closed.Swap(true) {
		return nil
	}
	return f.log.release(false)
}

// Discard closes the filter as Close does and, when no other filter of the
// process holds its log, removes what New created for it: the log file if
// it is still at its path and empty, then the directories New made if they
// are empty. It is for a filter made only to check that it can be (sievefs
// check builds a policy as mount does, and leaves nothing behind).
func (f *Filter) Discard() error {
	if f.closed.Swap(true) {
		return nil
	}
	return f.log.release(true)
}

// Post records the operation when it matches, and returns err unchanged.
func (f *Filter) Post(r *filter.Request, err error) error {
	if r.Op >= filter.NumOps || !f.ops[r.Op] {
		return err
	}
	both := r.Op == filter.OpRename || r.Op == filter.OpLink
	if f.c.Paths != nil && !f.c.Paths.Match(r.Path) && !(both && f.c.Paths.Match(r.NewPath)) {
		return err
	}
	l := getLine()
	l.buf = appendRecord(l.buf[:0], time.Now(), r, both, err)
	if f.log.write(l) {
		f.lines.Add(1)
	} else {
		f.errs.Add(1)
	}
	putLine(l)
	return err
}

// appendRecord appends the line recording r, ended with err, at t.
func appendRecord(b []byte, t time.Time, r *filter.Request, both bool, err error) []byte {
	b = append(b, `{"time":"`...)
	b = t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000000000Z07:00")
	b = append(b, `","op":"`...)
	b = append(b, r.Op.String()...) // lower-case ASCII
	b = append(b, '"')
	b = appendName(b, "path", r.Path)
	if both {
		b = appendName(b, "new_path", r.NewPath)
	}
	switch r.Op {
	case filter.OpOpen, filter.OpCreate, filter.OpTmpfile:
		b = appendOpenFlags(b, r.Flags)
	}
	b = append(b, `,"uid":`...)
	b = strconv.AppendUint(b, uint64(r.Caller.Uid), 10)
	b = append(b, `,"gid":`...)
	b = strconv.AppendUint(b, uint64(r.Caller.Gid), 10)
	b = append(b, `,"pid":`...)
	b = strconv.AppendUint(b, uint64(r.Caller.Pid), 10)
	b = append(b, `,"errno":`...)
	if err == nil {
		b = append(b, '0')
	} else {
		e := errnoOf(err)
		b = strconv.AppendUint(b, uint64(e), 10)
		b = append(b, `,"error":"`...)
		b = appendErrnoName(b, e)
		b = append(b, '"')
	}
	return append(b, '}', '\n')
}

// openFlags are the open(2) flags an open's line names, besides its
// access mode, in the order strace prints them.
var openFlags = []struct {
	bit  int
	name string
}{
	{unix.O_CREAT, "O_CREAT"}, {unix.O_EXCL, "O_EXCL"}, {unix.O_NOCTTY, "O_NOCTTY"},
	{unix.O_TRUNC, "O_TRUNC"}, {unix.O_APPEND, "O_APPEND"}, {unix.O_NONBLOCK, "O_NONBLOCK"},
	{unix.O_DSYNC, "O_DSYNC"}, {unix.O_DIRECT, "O_DIRECT"}, {largeFile(), "O_LARGEFILE"},
	{unix.O_DIRECTORY, "O_DIRECTORY"}, {unix.O_NOFOLLOW, "O_NOFOLLOW"}, {unix.O_NOATIME, "O_NOATIME"},
	{unix.O_CLOEXEC, "O_CLOEXEC"}, {unix.O_SYNC &^ unix.O_DSYNC, "O_SYNC"}, {unix.O_PATH, "O_PATH"},
	{unix.O_TMPFILE &^ unix.O_DIRECTORY, "O_TMPFILE"},
	{0x20, "FMODE_EXEC"}, // the kernel's mark of an open for execve
}

// largeFile returns the kernel's O_LARGEFILE bit, which it sets on every
// open of a 64-bit process (where the C library's O_LARGEFILE is 0).
func largeFile() int {
	switch runtime.GOARCH {
	case "arm64", "arm":
		return 0x20000
	case "ppc64", "ppc64le":
		return 0x10000
	case "mips", "mipsle", "mips64", "mips64le":
		return 0x2000
	}
	return 0x8000
}

// appendOpenFlags appends the access mode of an open ("access": "read",
// "write" or "read-write") and its flags as strace writes them
// ("flags": "O_WRONLY|O_APPEND"; bits without a name in hexadecimal).
func appendOpenFlags(b []byte, flags int) []byte {
	b = append(b, `,"access":"`...)
	acc := "O_RDONLY"
	switch flags & unix.O_ACCMODE {
	case unix.O_RDONLY:
		b = append(b, "read"...)
	case unix.O_WRONLY:
		b, acc = append(b, "write"...), "O_WRONLY"
	default:
		b, acc = append(b, "read-write"...), "O_RDWR"
	}
	b = append(b, `","flags":"`...)
	b = append(b, acc...)
	rest := flags &^ unix.O_ACCMODE
	for _, f := range openFlags {
		if rest&f.bit == f.bit {
			b = append(b, '|')
			b = append(b, f.name...)
			rest &^= f.bit
		}
	}
	if rest != 0 {
		b = append(b, "|0x"...)
		b = strconv.AppendUint(b, uint64(rest), 16)
	}
	return append(b, '"')
}

// errnoOf returns the errno the kernel gets for err: its own, or EIO for
// an error that is not an errno (as the dispatcher does).
func errnoOf(err error) syscall.Errno {
	if e, ok := err.(syscall.Errno); ok && e != 0 {
		return e
	}
	var e syscall.Errno
	if errors.As(err, &e) && e != 0 {
		return e
	}
	return syscall.EIO
}

// appendErrnoName appends the symbolic name of e ("ENOENT"), or "E" and
// its number when it has none.
func appendErrnoName(b []byte, e syscall.Errno) []byte {
	if name := unix.ErrnoName(e); name != "" {
		return append(b, name...)
	}
	return strconv.AppendUint(append(b, 'E'), uint64(e), 10)
}

// appendName appends `,"key":"name"` when name is valid UTF-8, and
// `,"key_b64":"base64"` when it is not.
func appendName(b []byte, key, name string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	if !utf8.ValidString(name) {
		b = append(b, `_b64":"`...)
		b = base64.StdEncoding.AppendEncode(b, []byte(name))
		return append(b, '"')
	}
	b = append(b, '"', ':')
	return appendString(b, name)
}

const hexDigits = "0123456789abcdef"

// appendString appends s, which must be valid UTF-8, as a JSON string.
// It escapes what JSON requires (quotes, backslashes and control
// characters) and U+2028 and U+2029, as encoding/json does.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			start = i + size
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// line is a pooled buffer for one record, with the function that writes
// it made once per buffer (so that writing allocates nothing).
type line struct {
	buf   []byte
	n     int
	err   error
	write func(fd uintptr) bool
}

// maxPooled is the largest buffer kept for reuse.
const maxPooled = 64 << 10

var linePool = sync.Pool{New: func() any {
	l := &line{buf: make([]byte, 0, 512)}
	l.write = func(fd uintptr) bool {
		for {
			n, err := unix.Write(int(fd), l.buf)
			switch err {
			case unix.EINTR:
				continue // nothing was written
			case unix.EAGAIN:
				return false // a non-blocking descriptor: wait, then write
			}
			l.n, l.err = n, err
			return true
		}
	}
	return l
}}

func getLine() *line { return linePool.Get().(*line) }

func putLine(l *line) {
	if cap(l.buf) > maxPooled {
		return
	}
	l.err = nil
	linePool.Put(l)
}

// logFile is one open log, shared by the filters of the process that
// write to it.
type logFile struct {
	key  fileKey
	f    *os.File
	raw  syscall.RawConn
	made made // what opening it created
	refs int  // guarded by registry.mu
}

type fileKey struct{ dev, ino uint64 }

var registry struct {
	mu    sync.Mutex
	files map[fileKey]*logFile
}

// openLog opens the log at path, or takes another reference to it when a
// filter of the process already has it open. It creates the log (mode
// 0600) and its missing directories (mode 0700) if need be, and remembers
// what it created for Discard.
func openLog(path string) (*logFile, error) {
	dirs, err := makeDirs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	made := made{path: path, dirs: dirs}
	f, created, err := openOrCreate(path)
	if err != nil {
		made.remove(fileKey{})
		return nil, fmt.Errorf("audit log: %w", err)
	}
	made.file = created
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		made.remove(fileKey{})
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || !fi.Mode().IsRegular() && fi.Mode()&os.ModeCharDevice == 0 {
		f.Close()
		made.remove(fileKey{})
		return nil, fmt.Errorf("audit log %s: not a regular file", path)
	}
	key := fileKey{uint64(st.Dev), st.Ino}
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if l := registry.files[key]; l != nil {
		l.refs++
		f.Close()
		return l, nil
	}
	raw, err := f.SyscallConn()
	if err != nil {
		f.Close()
		made.remove(key)
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	l := &logFile{key: key, f: f, raw: raw, made: made, refs: 1}
	if registry.files == nil {
		registry.files = map[fileKey]*logFile{}
	}
	registry.files[key] = l
	return l, nil
}

// openOrCreate opens the log at path for appending, creating it (mode
// 0600) if it does not exist; created says this call made it. O_NONBLOCK,
// which a regular file ignores, keeps the open of a FIFO from waiting for
// a reader.
func openOrCreate(path string) (f *os.File, created bool, err error) {
	const flags = os.O_WRONLY | os.O_APPEND | syscall.O_NONBLOCK
	f, err = os.OpenFile(path, flags, 0)
	if !errors.Is(err, fs.ErrNotExist) {
		return f, false, err
	}
	f, err = os.OpenFile(path, flags|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Made meanwhile, or a dangling symlink (created at its target).
		f, err = os.OpenFile(path, flags|os.O_CREATE, 0o600)
		return f, false, err
	}
	return f, err == nil, err
}

// makeDirs makes the missing directories of the path dir, outermost
// first, with mode 0700 (the log records who did what), and returns those
// it made.
func makeDirs(dir string) ([]string, error) {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		_, err := os.Stat(d)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) || d == filepath.Dir(d) {
			return nil, err
		}
		missing = append(missing, d)
	}
	var dirs []string
	for i := len(missing) - 1; i >= 0; i-- {
		err := os.Mkdir(missing[i], 0o700)
		if errors.Is(err, fs.ErrExist) {
			continue // made meanwhile: not ours
		}
		if err != nil {
			made{dirs: dirs}.remove(fileKey{})
			return nil, err
		}
		dirs = append(dirs, missing[i])
	}
	return dirs, nil
}

// made is what opening a log created: the directories, outermost first,
// and whether the file itself.
type made struct {
	path string
	dirs []string
	file bool
}

// remove removes what was made, as far as it is still as made: the file
// if it is still the one with key and still empty, then each directory if
// it is still empty (rmdir removes nothing else).
func (m made) remove(key fileKey) {
	if m.file {
		var st unix.Stat_t
		if unix.Lstat(m.path, &st) == nil && (fileKey{uint64(st.Dev), st.Ino}) == key && st.Size == 0 {
			unix.Unlink(m.path)
		}
	}
	for i := len(m.dirs) - 1; i >= 0; i-- {
		unix.Rmdir(m.dirs[i])
	}
}

// release drops a reference, closing the file with the last one; discard
// then removes what opening the log created (Filter.Discard).
func (l *logFile) release(discard bool) error {
	registry.mu.Lock()
	l.refs--
	last := l.refs == 0
	if last {
		delete(registry.files, l.key)
	}
	registry.mu.Unlock()
	if !last {
		return nil
	}
	if discard {
		l.made.remove(l.key)
	}
	return l.f.Close()
}

// write writes l's buffer with one write(2) and reports whether all of it
// was written. The file's own lock keeps a concurrent Close from closing
// the descriptor under the write.
func (lf *logFile) write(l *line) bool {
	l.n, l.err = 0, nil
	if err := lf.raw.Write(l.write); err != nil {
		return false // closed
	}
	if l.err != nil || l.n == len(l.buf) {
		return l.err == nil
	}
	// A short write (a full disk, a file size limit): end the torn line.
	if l.n > 0 {
		l.buf = append(l.buf[:0], '\n')
		lf.raw.Write(l.write)
	}
	return false
}
