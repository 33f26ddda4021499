package gossip

import (
	"bytes"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/discovery"
)

func seedMessages() []*message {
	var bm bitmap
	bm.set(3)
	bm.set(200)
	return []*message{
		{typ: typeDigest, nonce: 1, buckets: bm, sums: []uint32{7, 9}},
		{typ: typeSummary, nonce: 2, reply: 3, buckets: bm, entries: []summaryEntry{
			{prefix: prefix{3, 1}, published: 100, flags: flagSendable}, {prefix: prefix{200}, published: 5}}},
		{typ: typeRequest, nonce: 4, prefixes: []prefix{{3, 1}, {9}}},
		{typ: typeDescs, nonce: 5, descs: [][]byte{{1, 2, 3}, bytes.Repeat([]byte{7}, 1024)}},
	}
}

func TestWireRoundTrip(t *testing.T) {
	for _, m := range seedMessages() {
		b, err := m.encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := decode(b)
		if err != nil {
			t.Fatalf("type %d: %v", m.typ, err)
		}
		again, _ := got.encode()
		if !bytes.Equal(b, again) {
			t.Fatalf("type %d does not round-trip", m.typ)
		}
	}
	full := &message{typ: typeDigest}
	for b := range numBuckets {
		full.buckets.set(b)
		full.sums = append(full.sums, uint32(b))
	}
	if b, err := full.encode(); err != nil || len(b) > discovery.MaxMessage {
		t.Fatalf("a digest of all 256 buckets: %d bytes, %v", len(b), err)
	}
}

// FuzzDecode: decode never panics, accepts only canonical encodings, and
// a backend survives any message.
func FuzzDecode(f *testing.F) {
	for _, m := range seedMessages() {
		b, _ := m.encode()
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{1, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 5, 1, 2, 3, 4, 5})
	now := t0
	g := newGossip(simOptions(), func() time.Time { return now }, rand.NewPCG(1, 2), true)
	s := newSim(f, 1, simOptions(), 1)
	s.publish(s.nodes[0])
	if err := g.Start(s.nodes[0].cur.Encoded()); err != nil {
		f.Fatal(err)
	}
	g.Round()
	src := netip.MustParseAddrPort("192.0.2.1:7000")
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decode(data)
		if err == nil {
			b, err := m.encode()
			if err != nil {
				t.Fatalf("decoded message does not encode: %v", err)
			}
			if !bytes.Equal(b, data) {
				t.Fatalf("non-canonical encoding accepted:\n%x\n%x", data, b)
			}
		}
		peek(data) // reads descriptors before their signature is checked
		g.Deliver([]discovery.Message{{Addr: src, Transport: "udp", Data: data}})
	})
}
