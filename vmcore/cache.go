package vmcore

import "sync"

// DefaultCachePages is the page cache's default size: 1024 pages (4 MiB
// of 4 KiB pages).
const DefaultCachePages = 1024

// pageCache keeps decompressed pages by page frame number, evicting with
// the CLOCK algorithm. Slots are allocated as pages arrive, so an unused
// cache costs nothing. It is safe for concurrent use.
type pageCache struct {
	mu       sync.Mutex
	pageSize int
	index    map[uint64]int32 // pfn -> slot
	pfn      []uint64         // slot -> pfn
	used     []bool           // slot holds a page
	ref      []bool           // CLOCK reference bit
	data     [][]byte         // slot -> page, allocated on first use
	hand     int
}

func newPageCache(pages, pageSize int) *pageCache {
	if pages < 0 {
		pages = 0
	}
	return &pageCache{
		pageSize: pageSize,
		index:    make(map[uint64]int32),
		pfn:      make([]uint64, pages),
		used:     make([]bool, pages),
		ref:      make([]bool, pages),
		data:     make([][]byte, pages),
	}
}

// read copies from the cached page pfn, starting at off, into p. It
// reports whether the page was cached.
func (c *pageCache) read(pfn uint64, off int, p []byte) (int, bool) {
	if len(c.pfn) == 0 {
		return 0, false
	}
	c.mu.Lock()
	s, ok := c.index[pfn]
	if !ok {
		c.mu.Unlock()
		return 0, false
	}
	c.ref[s] = true
	n := copy(p, c.data[s][off:])
	c.mu.Unlock()
	return n, true
}

// put stores a copy of page (pageSize bytes) as pfn.
func (c *pageCache) put(pfn uint64, page []byte) {
	if len(c.pfn) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.index[pfn]; ok {
		return
	}
	for {
		s := c.hand
		c.hand++
		if c.hand == len(c.pfn) {
			c.hand = 0
		}
		if c.used[s] && c.ref[s] {
			c.ref[s] = false
			continue
		}
		if c.used[s] {
			delete(c.index, c.pfn[s])
		}
		c.pfn[s], c.used[s], c.ref[s] = pfn, true, false
		c.index[pfn] = int32(s)
		if c.data[s] == nil {
			c.data[s] = make([]byte, c.pageSize)
		}
		copy(c.data[s], page)
		return
	}
}

// reset empties the cache (benchmarks use it for cold reads).
func (c *pageCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.index)
	clear(c.used)
	clear(c.ref)
	c.hand = 0
}
