package main

// Tests of the log sink with writers that fail or block; the daemon under a
// closed or unread stderr pipe is tested in logpipe_test.go.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// testWriter is an output that fails while failing is set, and blocks each
// write until release is closed when one is given.
type testWriter struct {
	mu      sync.Mutex
	failing bool
	out     bytes.Buffer
	release chan struct{}
}

func (w *testWriter) Write(p []byte) (int, error) {
	if w.release != nil {
		<-w.release
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failing {
		return 0, syscall.EPIPE
	}
	return w.out.Write(p)
}

func (w *testWriter) setFailing(b bool) {
	w.mu.Lock()
	w.failing = b
	w.mu.Unlock()
}

func (w *testWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.out.String()
}

// waitFor polls cond for up to 10 s (a bound against hanging, not a timing
// requirement).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", what)
		}
	}
}

func TestLogSinkFailingOutput(t *testing.T) {
	w := &testWriter{failing: true}
	s := newLogSink(w)
	fmt.Fprintln(s, "a")
	fmt.Fprintln(s, "b")
	waitFor(t, "two lines counted as dropped", func() bool { return s.Dropped() == 2 })
	w.setFailing(false)
	fmt.Fprintln(s, "c")
	if err := s.Close(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	want := "sievefs: 2 log lines dropped (the log output was full or failing)\nc\n"
	if got := w.String(); got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

func TestLogSinkBlockedOutput(t *testing.T) {
	w := &testWriter{release: make(chan struct{})}
	s := newLogSink(w)
	line := strings.Repeat("x", 999) + "\n"
	const n = 3 * logBufferSize / 1000 // three buffers' worth
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			s.Write([]byte(line))
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		close(w.release)
		t.Fatal("writes blocked on a blocked output")
	}
	if s.Dropped() == 0 {
		t.Error("no line dropped with the output blocked")
	}
	// Close gives up at its deadline.
	if err := s.Close(time.Now().Add(50 * time.Millisecond)); !errors.Is(err, errLogTimeout) {
		t.Errorf("close with the output blocked: %v, want %v", err, errLogTimeout)
	}
	s.Write([]byte("after close\n")) // dropped, does not block
	close(w.release)
	<-s.done
	out := w.String()
	dropped := s.Dropped()
	written := uint64(strings.Count(out, line))
	if written+dropped != n+1 {
		t.Errorf("%d lines written, %d dropped, want %d in all", written, dropped, n+1)
	}
	// Dropped for a full buffer, then written once the output took lines
	// again: the count is reported (all but the line after Close).
	if want := fmt.Sprintf("sievefs: %d log lines dropped", dropped-1); !strings.Contains(out, want) {
		t.Errorf("output lacks %q", want)
	}
}

func TestLogSinkFlushOnClose(t *testing.T) {
	w := &testWriter{}
	s := newLogSink(w)
	var want strings.Builder
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(s, "line %d\n", i)
		fmt.Fprintf(&want, "line %d\n", i)
	}
	if err := s.Close(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if w.String() != want.String() || s.Dropped() != 0 {
		t.Errorf("after Close: %d bytes written of %d, %d dropped", len(w.String()), want.Len(), s.Dropped())
	}
}

func TestLogSinkPartialWrite(t *testing.T) {
	// A write that stops in the middle of a line (a disk filling up):
	// the notice starts on a line of its own.
	w := &partialWriter{}
	s := newLogSink(w)
	fmt.Fprintln(s, "first")
	waitFor(t, "the partial write", func() bool { return s.Dropped() == 1 })
	fmt.Fprintln(s, "second")
	if err := s.Close(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	want := "fir\nsievefs: 1 log lines dropped (the log output was full or failing)\nsecond\n"
	if got := w.out.String(); got != want {
		t.Errorf("output %q, want %q", got, want)
	}
}

// partialWriter takes 3 bytes of its first write, then fails it with
// ENOSPC; later writes succeed. Only the sink's goroutine uses it.
type partialWriter struct {
	out   bytes.Buffer
	calls int
}

func (w *partialWriter) Write(p []byte) (int, error) {
	w.calls++
	if w.calls == 1 {
		w.out.Write(p[:3])
		return 3, syscall.ENOSPC
	}
	return w.out.Write(p)
}

func TestDropNoticeFormat(t *testing.T) {
	// The notice is a log record of the daemon's format, so that a JSON
	// log stays JSON.
	line := dropNotice("json")(7)
	var rec struct {
		Level string `json:"level"`
		Msg   string `json:"msg"`
		Lines uint64 `json:"lines"`
	}
	if err := json.Unmarshal(line, &rec); err != nil || rec.Level != "WARN" || rec.Lines != 7 ||
		!strings.HasPrefix(rec.Msg, "log lines dropped") || !bytes.HasSuffix(line, []byte("\n")) {
		t.Errorf("JSON notice %q: %+v, %v", line, rec, err)
	}
	if line := string(dropNotice("text")(7)); !strings.Contains(line, `level=WARN msg="log lines dropped`) || !strings.HasSuffix(line, " lines=7\n") {
		t.Errorf("text notice %q", line)
	}
}
