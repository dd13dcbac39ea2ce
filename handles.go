package sievefs

import "sync"

// handleTable maps FUSE file handles (the Fh of OPEN and OPENDIR replies) to
// the daemon's state for them.
type handleTable[T any] struct {
	mu   sync.RWMutex
	next uint64
	m    map[uint64]T
}

func newHandleTable[T any]() *handleTable[T] {
	return &handleTable[T]{next: 1, m: make(map[uint64]T)}
}

// add stores v and returns its handle.
func (h *handleTable[T]) add(v T) uint64 {
	h.mu.Lock()
	id := h.next
	h.next++
	h.m[id] = v
	h.mu.Unlock()
	return id
}

// get returns the value of handle id.
func (h *handleTable[T]) get(id uint64) (T, bool) {
	h.mu.RLock()
	v, ok := h.m[id]
	h.mu.RUnlock()
	return v, ok
}

// remove deletes handle id and returns what it held.
func (h *handleTable[T]) remove(id uint64) (T, bool) {
	h.mu.Lock()
	v, ok := h.m[id]
	delete(h.m, id)
	h.mu.Unlock()
	return v, ok
}

// each calls fn for every live handle, under the read lock.
func (h *handleTable[T]) each(fn func(T)) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for _, v := range h.m {
		fn(v)
	}
}

// drain removes every live handle and returns what they held.
func (h *handleTable[T]) drain() []T {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]T, 0, len(h.m))
	for id, v := range h.m {
		out = append(out, v)
		delete(h.m, id)
	}
	return out
}
