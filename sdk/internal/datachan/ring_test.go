package datachan

import (
	"errors"
	"net/netip"
	"testing"
)

// testRing is a ring over ordinary memory (as the mapping would be).
func testRing(t testing.TB, slots int) (*Producer, *Consumer, *ring) {
	t.Helper()
	mem := make([]byte, ringBytes(slots))
	r := newRing(mem, uint64(slots))
	return &Producer{r: r}, &Consumer{r: r}, r
}

var addrA = netip.MustParseAddrPort("192.0.2.1:4000")

func TestRingWrapsAround(t *testing.T) {
	p, c, _ := testRing(t, 8)
	next, want := 0, 0
	for round := 0; round < 50; round++ {
		free, err := p.Free()
		if err != nil {
			t.Fatal(err)
		}
		k := 1 + round%free // vary the batch so slots wrap at every offset
		for i := range k {
			p.Put(i, addrA, []byte{byte(next), byte(next >> 8)})
			next++
		}
		p.Publish(k)
		avail, err := c.Avail()
		if err != nil || avail != k {
			t.Fatalf("round %d: Avail = %d, %v; want %d", round, avail, err, k)
		}
		for i := range avail {
			a, d, err := Datagram(c.Slot(i))
			if err != nil || a != addrA || len(d) != 2 || int(d[0])|int(d[1])<<8 != want {
				t.Fatalf("round %d slot %d: %v %v %v; want datagram %d", round, i, a, d, err, want)
			}
			want++
		}
		c.Release(avail)
	}
}

func TestRingFullAndEmpty(t *testing.T) {
	p, c, _ := testRing(t, 4)
	if n, _ := c.Avail(); n != 0 {
		t.Fatalf("new ring: Avail = %d", n)
	}
	if sleep, _ := c.Sleep(); !sleep {
		t.Fatal("consumer of an empty ring need not sleep?")
	}
	for i := range 4 {
		p.Put(i, addrA, []byte{1})
	}
	if !p.Publish(4) {
		t.Fatal("publishing to a sleeping consumer did not ask for a bell")
	}
	if free, _ := p.Free(); free != 0 {
		t.Fatalf("full ring: Free = %d", free)
	}
	if sleep, _ := p.Sleep(); !sleep {
		t.Fatal("producer of a full ring need not sleep?")
	}
	if !c.Release(1) {
		t.Fatal("freeing a slot for a sleeping producer did not ask for a bell")
	}
	if c.Release(0) {
		t.Fatal("second bell for one sleep")
	}
	if free, _ := p.Free(); free != 1 {
		t.Fatalf("Free = %d; want 1", free)
	}
}

// The other side's index is checked before use: a peer that writes
// nonsense gets ErrCorrupt, never an out-of-range slot.
func TestRingRejectsCorruptIndices(t *testing.T) {
	p, c, r := testRing(t, 8)
	r.head.Store(9) // 9 filled slots in an 8-slot ring
	if _, err := c.Avail(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("head 9 past tail 0: %v; want ErrCorrupt", err)
	}
	r.head.Store(^uint64(0)) // behind the tail
	if _, err := c.Avail(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("head behind tail: %v; want ErrCorrupt", err)
	}
	r.tail.Store(5) // the consumer freed slots never published
	if _, err := p.Free(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("tail 5 past head 0: %v; want ErrCorrupt", err)
	}
	if _, err := p.Sleep(); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Sleep on a corrupt ring: %v; want ErrCorrupt", err)
	}
}

func TestDatagramBounds(t *testing.T) {
	s := make([]byte, SlotSize)
	PutHeader(s, addrA, SlotPayload)
	if _, d, err := Datagram(s); err != nil || len(d) != SlotPayload {
		t.Fatalf("full slot: %d bytes, %v", len(d), err)
	}
	PutHeader(s, addrA, SlotPayload+1)
	if _, _, err := Datagram(s); err == nil {
		t.Fatal("length past the slot accepted")
	}
	if _, _, err := Datagram(s[:10]); err == nil {
		t.Fatal("short slot accepted")
	}
	v6 := netip.MustParseAddrPort("[2001:db8::1]:53")
	PutHeader(s, v6, 3)
	if a, d, err := Datagram(s); err != nil || a != v6 || len(d) != 3 {
		t.Fatalf("IPv6: %v %d %v", a, len(d), err)
	}
}

// FuzzDatagram: whatever a hostile peer leaves in a slot, decoding it
// never panics and never returns bytes outside the slot's payload.
func FuzzDatagram(f *testing.F) {
	s := make([]byte, SlotSize)
	PutHeader(s, addrA, 100)
	f.Add(s[:slotHeader+100])
	f.Add([]byte{0xff, 0xff})
	f.Add(make([]byte, slotHeader))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, d, err := Datagram(b)
		if err != nil {
			return
		}
		if len(d) > SlotPayload || slotHeader+len(d) > len(b) {
			t.Fatalf("%d bytes out of a %d-byte slot", len(d), len(b))
		}
	})
}
