// Package view holds a node's admitted peers, indexed by domain.
//
// Only the node's admission code adds peers, and only after a peer's
// descriptor signature and reachability proof have checked out, so
// everything in a View is a peer that is who it says and is where it says.
// A view never goes back to an older descriptor of a peer, and remembers
// when each peer was last heard from (a proof, or traffic on its link) so
// that peers silent for too long can be evicted.
// The index by top-level domain (IPv4 /16, IPv6 /32) is what path selection
// walks: relays are chosen uniformly over domains, not over nodes.
package view

import (
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/domain"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/mimic"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
)

// Peer is one admitted node.
type Peer struct {
	ID        identity.ID
	Desc      *descriptor.Descriptor
	Addr      netip.AddrPort // the address whose reachability was proven
	Transport string         // the transport it was proven on
	Admitted  time.Time
	// ExitPolicy is the policy an exit's descriptor publishes, parsed
	// once when the peer was admitted; nil for a peer that is no exit or
	// whose summary did not parse.
	ExitPolicy *exitpolicy.Policy
}

// Top is the peer's top-level domain.
func (p *Peer) Top() netip.Prefix { return domain.Top(p.Addr.Addr()) }

// View is safe for concurrent use.
type View struct {
	mu      sync.RWMutex
	peers   map[identity.ID]*Peer
	heard   map[identity.ID]time.Time // last time each peer was heard from
	byTop   map[netip.Prefix]map[identity.ID]*Peer
	version uint64
	size    atomic.Int64 // len(peers), readable without the lock
	// nextExpiry is no later than the earliest descriptor expiry in the
	// view, so that RemoveExpired scans only when something may expire.
	nextExpiry time.Time
}

// New returns an empty view.
func New() *View {
	return &View{peers: map[identity.ID]*Peer{}, heard: map[identity.ID]time.Time{}, byTop: map[netip.Prefix]map[identity.ID]*Peer{}}
}

// Add inserts or replaces a peer; it reports whether the view changed. A
// descriptor older (by Published) than the one held for that ID is
// refused wherever it was proven: a peer's older descriptor, still signed
// and unexpired, must not roll back its keys or move it (PROTOCOL.md §9).
// One as old as the one held replaces it only when proven at another
// address. A peer added is heard at p.Admitted.
func (v *View) Add(p *Peer) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if old, ok := v.peers[p.ID]; ok {
		if p.Desc.Published.Before(old.Desc.Published) {
			return false
		}
		if !p.Desc.Published.After(old.Desc.Published) && old.Addr == p.Addr && old.Transport == p.Transport {
			return false
		}
		v.removeLocked(p.ID)
	}
	v.peers[p.ID] = p
	v.heard[p.ID] = p.Admitted
	v.size.Store(int64(len(v.peers)))
	if v.nextExpiry.IsZero() || p.Desc.Expires.Before(v.nextExpiry) {
		v.nextExpiry = p.Desc.Expires
	}
	top := p.Top()
	if v.byTop[top] == nil {
		v.byTop[top] = map[identity.ID]*Peer{}
	}
	v.byTop[top][p.ID] = p
	v.version++
	return true
}

// Remove drops a peer; it reports whether the peer was present.
func (v *View) Remove(id identity.ID) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.removeLocked(id)
}

func (v *View) removeLocked(id identity.ID) bool {
	p, ok := v.peers[id]
	if !ok {
		return false
	}
	delete(v.peers, id)
	delete(v.heard, id)
	v.size.Store(int64(len(v.peers)))
	top := p.Top()
	delete(v.byTop[top], id)
	if len(v.byTop[top]) == 0 {
		delete(v.byTop, top)
	}
	v.version++
	return true
}

// RemoveExpired drops every peer whose descriptor expired before now and
// returns how many it dropped. Unlike a loop over All it neither copies
// nor sorts the view, which matters when it runs every maintenance tick.
func (v *View) RemoveExpired(now time.Time) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.nextExpiry.IsZero() || !now.After(v.nextExpiry) {
		return 0
	}
	n := 0
	var next time.Time
	for id, p := range v.peers {
		switch {
		case now.After(p.Desc.Expires):
			v.removeLocked(id)
			n++
		case next.IsZero() || p.Desc.Expires.Before(next):
			next = p.Desc.Expires
		}
	}
	v.nextExpiry = next
	return n
}

// Touch records that peer id was heard from at t (a proof it gave, or
// authenticated traffic on its link); an earlier t than the one held
// changes nothing. It reports whether the peer is in the view.
func (v *View) Touch(id identity.ID, t time.Time) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.peers[id]; !ok {
		return false
	}
	if t.After(v.heard[id]) {
		v.heard[id] = t
	}
	return true
}

// Heard is when peer id was last heard from.
func (v *View) Heard(id identity.ID) (time.Time, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	t, ok := v.heard[id]
	return t, ok
}

// Quiet returns the peers not heard from since before, in no order.
func (v *View) Quiet(before time.Time) []*Peer {
	v.mu.RLock()
	defer v.mu.RUnlock()
	var out []*Peer
	for id, t := range v.heard {
		if t.Before(before) {
			out = append(out, v.peers[id])
		}
	}
	return out
}

// RemoveSilent drops every peer not heard from since before and returns
// them.
func (v *View) RemoveSilent(before time.Time) []*Peer {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []*Peer
	for id, t := range v.heard {
		if t.Before(before) {
			out = append(out, v.peers[id])
			v.removeLocked(id)
		}
	}
	return out
}

// Get returns the peer with the given ID.
func (v *View) Get(id identity.ID) (*Peer, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	p, ok := v.peers[id]
	return p, ok
}

// Len is the number of admitted peers.
func (v *View) Len() int {
	// Lock-free: monitors poll thousands of views while they are written.
	return int(v.size.Load())
}

// Version changes whenever the set of peers changes.
func (v *View) Version() uint64 {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.version
}

// All returns the peers sorted by ID.
func (v *View) All() []*Peer {
	v.mu.RLock()
	out := make([]*Peer, 0, len(v.peers))
	for _, p := range v.peers {
		out = append(out, p)
	}
	v.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return lessID(out[i].ID, out[j].ID) })
	return out
}

// Tops returns the top-level domains present, sorted.
func (v *View) Tops() []netip.Prefix {
	v.mu.RLock()
	out := make([]netip.Prefix, 0, len(v.byTop))
	for t := range v.byTop {
		out = append(out, t)
	}
	v.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Addr().Less(out[j].Addr()) })
	return out
}

// InTop returns the peers in one top-level domain, sorted by ID.
func (v *View) InTop(top netip.Prefix) []*Peer {
	v.mu.RLock()
	out := make([]*Peer, 0, len(v.byTop[top]))
	for _, p := range v.byTop[top] {
		out = append(out, p)
	}
	v.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return lessID(out[i].ID, out[j].ID) })
	return out
}

// Members lists the peers (plus extra, typically the local node) in the
// form mimic selection needs.
func (v *View) Members(extra ...mimic.Member) []mimic.Member {
	v.mu.RLock()
	out := make([]mimic.Member, 0, len(v.peers)+len(extra))
	out = append(out, extra...)
	for _, p := range v.peers {
		out = append(out, mimic.Member{ID: p.ID, Addr: p.Addr.Addr()})
	}
	v.mu.RUnlock()
	return out
}

func lessID(a, b identity.ID) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}
