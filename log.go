package sievefs

import (
	"context"
	"log"
	"log/slog"
	"strings"
)

// newStdLogger adapts go-fuse's *log.Logger output (the wire log of
// --fuse-debug, and its rare complaints) to the daemon's slog logger.
func newStdLogger(l *slog.Logger) *log.Logger {
	return log.New(slogWriter{l}, "", 0)
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Log(context.Background(), slog.LevelDebug, strings.TrimRight(string(p), "\n"), "source", "go-fuse")
	return len(p), nil
}
