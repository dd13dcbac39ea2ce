package redact

import (
	"container/list"
	"sync"

	"github.com/sievefs/sievefs/filter"
)

// cacheSize is how many files' parse results a Filter keeps. An entry holds
// at most maxGPSEntries ranges and about maxReads parts (16 bytes each):
// the cache stays under cacheSize × 24 KiB, a few hundred bytes per entry
// for real images.
const cacheSize = 256

// result is the parse of one version of a file: its layout, or the error
// that refuses it.
type result struct {
	version filter.Version
	layout  *layout
	err     error
}

type fileKey struct{ dev, ino uint64 }

// cache holds the latest parse result of the files read most recently,
// one per file (Dev, Ino); a result is used only for the exact version it
// was parsed from.
type cache struct {
	mu    sync.Mutex
	lru   list.List // of *result, most recently used first
	files map[fileKey]*list.Element
}

func newCache() *cache {
	return &cache{files: map[fileKey]*list.Element{}}
}

func keyOf(v filter.Version) fileKey { return fileKey{v.Dev, v.Ino} }

// get returns the result parsed from version v, or nil.
func (c *cache) get(v filter.Version) *result {
	c.mu.Lock()
	defer c.mu.Unlock()
	el := c.files[keyOf(v)]
	if el == nil {
		return nil
	}
	r := el.Value.(*result)
	if r.version != v {
		return nil
	}
	c.lru.MoveToFront(el)
	return r
}

// put stores r as its file's result, replacing an older one, and evicts
// the least recently used files beyond cacheSize.
func (c *cache) put(r *result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := keyOf(r.version)
	if el := c.files[k]; el != nil {
		el.Value = r
		c.lru.MoveToFront(el)
		return
	}
	c.files[k] = c.lru.PushFront(r)
	for c.lru.Len() > cacheSize {
		old := c.lru.Remove(c.lru.Back()).(*result)
		delete(c.files, keyOf(old.version))
	}
}

// drop forgets r if it is still its file's result.
func (c *cache) drop(r *result) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := keyOf(r.version)
	if el := c.files[k]; el != nil && el.Value.(*result) == r {
		c.lru.Remove(el)
		delete(c.files, k)
	}
}

// len returns the number of results held.
func (c *cache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
