package lower

import (
	"sync"

	"golang.org/x/sys/unix"
)

// fdCache bounds the O_PATH descriptors held for inodes. Inodes that can be
// reopened by handle sit on an LRU list while they hold a descriptor; past
// max, the least recently used ones that no operation is using lose theirs.
// Inodes without a handle keep their descriptor pinned.
type fdCache struct {
	mu         sync.Mutex
	max        int
	n          int    // descriptors on the LRU list
	pinned     int    // descriptors of inodes without a handle
	head, tail *Inode // most and least recently used
}

// holds reports whether ino has a descriptor now. Caller holds no fdCache lock.
func (c *fdCache) holds(ino *Inode) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ino.fd >= 0
}

// install gives a new inode its first descriptor.
func (c *fdCache) install(ino *Inode, fd int) {
	c.mu.Lock()
	ino.fd = fd
	var victims []int
	if ino.evictable() {
		c.pushFront(ino)
		victims = c.evict()
	} else {
		c.pinned++
	}
	c.mu.Unlock()
	closeAll(victims)
}

// offer gives ino a descriptor if it has none, else closes fd.
func (c *fdCache) offer(ino *Inode, fd int) {
	c.mu.Lock()
	if ino.fd >= 0 || ino.forgotten || !ino.evictable() {
		c.mu.Unlock()
		unix.Close(fd)
		return
	}
	ino.fd = fd
	c.pushFront(ino)
	victims := c.evict()
	c.mu.Unlock()
	closeAll(victims)
}

// acquire returns a descriptor of ino that stays open until release.
func (c *fdCache) acquire(t *Tree, ino *Inode) (int, error) {
	c.mu.Lock()
	if ino.fd >= 0 {
		ino.users++
		if ino.inLRU {
			c.unlink(ino)
			c.pushFront(ino)
		}
		fd := ino.fd
		c.mu.Unlock()
		return fd, nil
	}
	c.mu.Unlock()
	if !ino.evictable() {
		return -1, unix.ESTALE
	}
	fd, err := unix.OpenByHandleAt(t.mountFD, ino.handle, unix.O_PATH|unix.O_CLOEXEC)
	if err != nil {
		return -1, err
	}
	c.mu.Lock()
	if ino.fd >= 0 {
		// Another operation reopened it first.
		ino.users++
		cur := ino.fd
		c.mu.Unlock()
		unix.Close(fd)
		return cur, nil
	}
	if ino.forgotten {
		// The kernel forgot it meanwhile: the descriptor is closed on release.
		ino.fd = fd
		ino.users++
		c.mu.Unlock()
		return fd, nil
	}
	ino.fd = fd
	ino.users++
	c.pushFront(ino)
	victims := c.evict()
	c.mu.Unlock()
	closeAll(victims)
	return fd, nil
}

// release ends one acquire of ino.
func (c *fdCache) release(ino *Inode) {
	c.mu.Lock()
	ino.users--
	var victim = -1
	if ino.users == 0 && ino.forgotten && ino.fd >= 0 {
		victim = c.drop(ino)
	}
	c.mu.Unlock()
	if victim >= 0 {
		unix.Close(victim)
	}
}

// forget marks ino as gone from the table and closes its descriptor once no
// operation uses it.
func (c *fdCache) forget(ino *Inode) {
	c.mu.Lock()
	ino.forgotten = true
	victim := -1
	if ino.users == 0 && ino.fd >= 0 {
		victim = c.drop(ino)
	}
	c.mu.Unlock()
	if victim >= 0 {
		unix.Close(victim)
	}
}

// drop detaches ino's descriptor and returns it for closing. Caller holds mu.
func (c *fdCache) drop(ino *Inode) int {
	fd := ino.fd
	ino.fd = -1
	if ino.inLRU {
		c.unlink(ino)
	} else if !ino.evictable() {
		c.pinned--
	}
	// A forgotten evictable inode reopened by handle is on no list.
	return fd
}

// evict detaches descriptors past the budget, least recently used first,
// skipping those in use. Caller holds mu; the caller closes what it returns.
func (c *fdCache) evict() []int {
	var victims []int
	for ino := c.tail; c.n > c.max && ino != nil; {
		prev := ino.prev
		if ino.users == 0 {
			victims = append(victims, c.drop(ino))
		}
		ino = prev
	}
	return victims
}

func (c *fdCache) pushFront(ino *Inode) {
	ino.prev, ino.next = nil, c.head
	if c.head != nil {
		c.head.prev = ino
	}
	c.head = ino
	if c.tail == nil {
		c.tail = ino
	}
	ino.inLRU = true
	c.n++
}

func (c *fdCache) unlink(ino *Inode) {
	if ino.prev != nil {
		ino.prev.next = ino.next
	} else {
		c.head = ino.next
	}
	if ino.next != nil {
		ino.next.prev = ino.prev
	} else {
		c.tail = ino.prev
	}
	ino.prev, ino.next, ino.inLRU = nil, nil, false
	c.n--
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
