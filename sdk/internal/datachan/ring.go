package datachan

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"sync/atomic"
	"unsafe"
)

// A ring is one direction of a shared-memory data channel: a
// single-producer single-consumer queue of fixed-size slots in memory both
// processes map (see shm.go for the layout and the set-up). Each side
// keeps its own copy of the index it owns and only ever stores it; the
// other side's index is loaded from shared memory and checked before it
// is used, because the other process may be broken or hostile.
//
// Indices count slots from 0 and never wrap in practice (2^64 slots);
// slot i lives at i mod Slots. The ring is empty when head == tail and
// full when head-tail == Slots.
//
// Sleeping uses the eventcount pattern, with a byte on a Unix socket (the
// "doorbell") as the wake-up: a consumer that finds the ring empty sets
// consWaiting, loads head again, and only then blocks on its doorbell; a
// producer stores head, then loads consWaiting and rings only if it is
// set (clearing it first, so one sleep costs one byte). sync/atomic
// operations are sequentially consistent, so one of the two always sees
// the other's store: no wake-up is lost. A full ring works the same way
// in the other direction (prodWaiting, rung by the consumer after it
// frees slots). A busy channel therefore crosses with no system call.

// Slot layout: a 32-byte header, then the datagram.
const (
	SlotSize    = 2048
	slotHeader  = 32
	SlotPayload = SlotSize - slotHeader // largest datagram a slot holds

	// ring control block: each index on its own cache line.
	offHead        = 0
	offConsWaiting = 64
	offTail        = 128
	offProdWaiting = 192
	ctlSize        = 256
)

// ErrCorrupt means the other side left an index that cannot be right:
// the channel is unusable from now on.
var ErrCorrupt = errors.New("datachan: shared ring index out of range")

// ring is one side's view of one direction.
type ring struct {
	head, tail               *atomic.Uint64
	consWaiting, prodWaiting *atomic.Uint32
	slots                    []byte
	n                        uint64 // slots, a power of two
}

func newRing(mem []byte, n uint64) *ring {
	at64 := func(off int) *atomic.Uint64 { return (*atomic.Uint64)(unsafe.Pointer(&mem[off])) }
	at32 := func(off int) *atomic.Uint32 { return (*atomic.Uint32)(unsafe.Pointer(&mem[off])) }
	return &ring{
		head: at64(offHead), tail: at64(offTail),
		consWaiting: at32(offConsWaiting), prodWaiting: at32(offProdWaiting),
		slots: mem[ctlSize : ctlSize+int(n)*SlotSize : ctlSize+int(n)*SlotSize],
		n:     n,
	}
}

func (r *ring) slot(i uint64) []byte {
	off := int(i&(r.n-1)) * SlotSize
	return r.slots[off : off+SlotSize : off+SlotSize]
}

// Producer is the writing side of a ring. Not safe for concurrent use.
type Producer struct {
	r    *ring
	head uint64 // ours; published with Publish
}

// Free returns how many slots may be filled now.
func (p *Producer) Free() (int, error) {
	t := p.r.tail.Load()
	used := p.head - t
	if used > p.r.n { // tail ahead of head, or too far behind
		return 0, ErrCorrupt
	}
	return int(p.r.n - used), nil
}

// Slot returns the i-th free slot (0 ≤ i < Free()).
func (p *Producer) Slot(i int) []byte { return p.r.slot(p.head + uint64(i)) }

// Put writes one datagram into the i-th free slot. len(data) ≤ SlotPayload.
func (p *Producer) Put(i int, addr netip.AddrPort, data []byte) {
	s := p.Slot(i)
	PutHeader(s, addr, len(data))
	copy(s[slotHeader:], data)
}

// Publish makes the first k free slots visible to the consumer and
// reports whether the consumer is asleep and must be rung.
func (p *Producer) Publish(k int) (ring bool) {
	p.head += uint64(k)
	p.r.head.Store(p.head)
	return p.r.consWaiting.Load() != 0 && p.r.consWaiting.CompareAndSwap(1, 0)
}

// Sleep announces that the producer is about to wait for space and
// reports whether it still must (false: space appeared meanwhile).
func (p *Producer) Sleep() (bool, error) {
	p.r.prodWaiting.Store(1)
	free, err := p.Free()
	if err != nil || free > 0 {
		p.r.prodWaiting.CompareAndSwap(1, 0)
		return false, err
	}
	return true, nil
}

// Consumer is the reading side of a ring. Not safe for concurrent use.
type Consumer struct {
	r    *ring
	tail uint64 // ours; published with Release
}

// Avail returns how many slots hold datagrams.
func (c *Consumer) Avail() (int, error) {
	h := c.r.head.Load()
	n := h - c.tail
	if n > c.r.n {
		return 0, ErrCorrupt
	}
	return int(n), nil
}

// Slot returns the i-th filled slot (0 ≤ i < Avail()).
func (c *Consumer) Slot(i int) []byte { return c.r.slot(c.tail + uint64(i)) }

// Release frees the first k filled slots and reports whether the producer
// is asleep and must be rung.
func (c *Consumer) Release(k int) (ring bool) {
	c.tail += uint64(k)
	c.r.tail.Store(c.tail)
	return c.r.prodWaiting.Load() != 0 && c.r.prodWaiting.CompareAndSwap(1, 0)
}

// Sleep announces that the consumer is about to wait for data and reports
// whether it still must (false: data appeared meanwhile).
func (c *Consumer) Sleep() (bool, error) {
	c.r.consWaiting.Store(1)
	n, err := c.Avail()
	if err != nil || n > 0 {
		c.r.consWaiting.CompareAndSwap(1, 0)
		return false, err
	}
	return true, nil
}

// Slot header: len uint16, port uint16, addr [16]byte (IPv4 as
// ::ffff:a.b.c.d), then zero padding to 32 bytes; little-endian, since
// both ends are one machine.

// PutHeader writes a slot's header.
func PutHeader(s []byte, addr netip.AddrPort, n int) {
	binary.LittleEndian.PutUint16(s[0:], uint16(n))
	binary.LittleEndian.PutUint16(s[2:], addr.Port())
	a := addr.Addr().As16()
	copy(s[4:20], a[:])
}

// errBadLen is a slot whose length does not fit the slot.
var errBadLen = errors.New("datachan: slot length out of range")

// Datagram decodes a slot read from shared memory. The length is read
// once and checked, so a peer rewriting the slot meanwhile can change
// the bytes returned but never their bounds. data aliases the slot.
func Datagram(s []byte) (addr netip.AddrPort, data []byte, err error) {
	if len(s) < slotHeader {
		return addr, nil, errBadLen
	}
	n := int(binary.LittleEndian.Uint16(s[0:]))
	if n > SlotPayload || n > len(s)-slotHeader {
		return addr, nil, errBadLen
	}
	port := binary.LittleEndian.Uint16(s[2:])
	ip := netip.AddrFrom16([16]byte(s[4:20])).Unmap()
	return netip.AddrPortFrom(ip, port), s[slotHeader : slotHeader+n : slotHeader+n], nil
}

// Payload is the datagram area of a slot, for a producer that fills it in
// place (e.g. a transport's ReadBatch) and writes the header afterwards.
func Payload(s []byte) []byte { return s[slotHeader:SlotSize:SlotSize] }
