package simnet

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
)

// Allocator hands out node addresses over /16 domains, filling each /24
// with PerMid hosts before opening the next. Which /16s are used is a
// seeded shuffle of 10.0.0.0–209.255.0.0 (skipping 127/8), so domain
// layouts are reproducible.
type Allocator struct {
	perMid int
	port   uint16
	slots  []uint16 // unused /16s, shuffled: a.b as a<<8|b
	tops   []netip.Prefix
	used   []int // hosts handed out per top
	per    []int // hosts per /24 in each top
}

// NewAllocator returns an allocator putting perMid nodes in each /24
// (1..254) and listening on port.
func NewAllocator(seed uint64, perMid int, port uint16) *Allocator {
	perMid = min(max(perMid, 1), 254)
	var slots []uint16
	for a := 10; a < 210; a++ {
		if a == 127 {
			continue
		}
		for b := range 256 {
			slots = append(slots, uint16(a<<8|b))
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	rng.Shuffle(len(slots), func(i, j int) { slots[i], slots[j] = slots[j], slots[i] })
	return &Allocator{perMid: perMid, port: port, slots: slots}
}

// NewDomains opens k fresh /16s and returns their handles.
func (a *Allocator) NewDomains(k int) ([]int, error) {
	return a.NewDomainsPacked(k, a.perMid)
}

// NewDomainsPacked is NewDomains with perMid hosts in each /24 of these
// domains instead of the allocator's: a Sybil adversary packing a
// thousand nodes into one /16 needs more than 256 of them there.
func (a *Allocator) NewDomainsPacked(k, perMid int) ([]int, error) {
	perMid = min(max(perMid, 1), 254)
	if k > len(a.slots) {
		return nil, fmt.Errorf("simnet: %d more /16 domains wanted, %d left", k, len(a.slots))
	}
	out := make([]int, k)
	for i := range out {
		s := a.slots[0]
		a.slots = a.slots[1:]
		out[i] = len(a.tops)
		a.tops = append(a.tops, netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(s >> 8), byte(s), 0, 0}), 16))
		a.used = append(a.used, 0)
		a.per = append(a.per, perMid)
	}
	return out, nil
}

// Addr hands out the next address in domain top.
func (a *Allocator) Addr(top int) (netip.AddrPort, error) {
	q := a.used[top]
	mid, host := q/a.per[top], q%a.per[top]+1
	if mid > 255 {
		return netip.AddrPort{}, fmt.Errorf("simnet: domain %s is full", a.tops[top])
	}
	a.used[top]++
	b := a.tops[top].Addr().As4()
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{b[0], b[1], byte(mid), byte(host)}), a.port), nil
}

// Spread hands out count addresses round-robin over domains.
func (a *Allocator) Spread(count int, domains []int) ([]netip.AddrPort, error) {
	out := make([]netip.AddrPort, 0, count)
	for i := range count {
		ap, err := a.Addr(domains[i%len(domains)])
		if err != nil {
			return nil, err
		}
		out = append(out, ap)
	}
	return out, nil
}
