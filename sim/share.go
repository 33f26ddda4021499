package sim

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/mimic"
)

// TableCache shares mimic tables between nodes: a table depends only on
// (member set, epoch, k), so nodes with identical views get one table.
// Concurrent requests for one key build it once. It keeps the most
// recently used tables up to a bound.
type TableCache struct {
	limit int

	mu      sync.Mutex
	entries map[[32]byte]*tableEntry
	tick    uint64

	Builds, Hits atomic.Uint64
}

type tableEntry struct {
	ready chan struct{}
	table *mimic.Table
	used  uint64
}

// NewTableCache keeps up to limit tables.
func NewTableCache(limit int) *TableCache {
	return &TableCache{limit: max(limit, 1), entries: map[[32]byte]*tableEntry{}}
}

// Table has the signature of mimic.NewTable (node.Options.MimicTable).
func (c *TableCache) Table(members []mimic.Member, epoch uint64, k int) *mimic.Table {
	key := tableKey(members, epoch, k)
	c.mu.Lock()
	c.tick++
	if e := c.entries[key]; e != nil {
		e.used = c.tick
		c.mu.Unlock()
		<-e.ready
		c.Hits.Add(1)
		return e.table
	}
	e := &tableEntry{ready: make(chan struct{}), used: c.tick}
	c.entries[key] = e
	c.evictLocked()
	c.mu.Unlock()
	e.table = mimic.NewTable(members, epoch, k)
	close(e.ready)
	c.Builds.Add(1)
	return e.table
}

func (c *TableCache) evictLocked() {
	for len(c.entries) > c.limit {
		var oldest [32]byte
		var at uint64 = 1<<64 - 1
		for k, e := range c.entries {
			if e.used < at {
				oldest, at = k, e.used
			}
		}
		delete(c.entries, oldest)
	}
}

// tableKey hashes the member set (order-independent), epoch and k.
func tableKey(members []mimic.Member, epoch uint64, k int) [32]byte {
	ms := slices.Clone(members)
	slices.SortFunc(ms, func(a, b mimic.Member) int {
		if c := bytes.Compare(a.ID[:], b.ID[:]); c != 0 {
			return c
		}
		return a.Addr.Compare(b.Addr)
	})
	h := sha256.New()
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], epoch)
	h.Write(buf[:])
	binary.BigEndian.PutUint64(buf[:], uint64(k))
	h.Write(buf[:])
	for _, m := range ms {
		h.Write(m.ID[:])
		a := m.Addr.As16()
		h.Write(a[:])
	}
	var key [32]byte
	h.Sum(key[:0])
	return key
}

// DescriptorCache verifies each distinct descriptor once and shares the
// parsed (immutable) result; the time checks of descriptor.Parse are
// repeated on every call. Failures are not cached: a forgery is checked
// every time it shows up.
type DescriptorCache struct {
	limit int

	mu sync.Mutex
	m  map[[32]byte]*descriptor.Descriptor

	Verified, Hits atomic.Uint64
}

// NewDescriptorCache keeps up to limit descriptors (it drops the expired
// ones, then everything, when full).
func NewDescriptorCache(limit int) *DescriptorCache {
	return &DescriptorCache{limit: max(limit, 1), m: map[[32]byte]*descriptor.Descriptor{}}
}

// Parse has the signature of descriptor.Parse (node.Options.ParseDescriptor).
func (c *DescriptorCache) Parse(b []byte, now time.Time) (*descriptor.Descriptor, error) {
	if len(b) > descriptor.MaxSize {
		return descriptor.Parse(b, now) // the error
	}
	key := sha256.Sum256(b)
	c.mu.Lock()
	d := c.m[key]
	c.mu.Unlock()
	if d == nil {
		var err error
		if d, err = descriptor.Parse(b, now); err != nil {
			return nil, err
		}
		c.Verified.Add(1)
		c.mu.Lock()
		if len(c.m) >= c.limit {
			for k, old := range c.m {
				if now.After(old.Expires) {
					delete(c.m, k)
				}
			}
			if len(c.m) >= c.limit {
				clear(c.m)
			}
		}
		c.m[key] = d
		c.mu.Unlock()
		return d, nil
	}
	c.Hits.Add(1)
	switch {
	case now.Add(descriptor.ClockSkew).Before(d.Published):
		return nil, fmt.Errorf("%w: node %s", descriptor.ErrNotYetValid, d.ID().Short())
	case !now.Add(-descriptor.ClockSkew).Before(d.Expires):
		return nil, fmt.Errorf("%w: node %s", descriptor.ErrExpired, d.ID().Short())
	}
	return d, nil
}
