package onion

import (
	"bytes"
	"testing"
)

func BenchmarkSeal3Hops(b *testing.B) {
	c := newCircuit(b, 3)
	cell := make([]byte, CellSize)
	payload := testPayload("bench", PayloadSize)
	b.SetBytes(CellSize)
	b.ReportAllocs()
	for b.Loop() {
		if err := c.path.Seal(cell, 2, payload, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// presealed cells, because each one can pass a relay only once.
const benchPool = 1024

// BenchmarkRelayForward measures one relay's forward step on a 3-hop cell
// for the last hop, v1 (ChaCha20 + Poly1305, kept in bench_v1_test.go as
// the baseline) and v2 side by side: with -count N the two alternate.
func BenchmarkRelayForward(b *testing.B) {
	b.Run("v1", func(b *testing.B) {
		keys := []*v1Keys{v1TestKeys("bench/0"), v1TestKeys("bench/1"), v1TestKeys("bench/2")}
		pool := make([][]byte, benchPool)
		for i := range pool {
			pool[i] = make([]byte, CellSize)
			v1Seal(pool[i], keys, uint32(i+1), nil)
		}
		r := &v1Relay{keys: *keys[0]}
		benchForward(b, pool, r.Forward, func() { r.win = window{} })
	})
	b.Run("v2", func(b *testing.B) {
		c := newCircuit(b, 3)
		pool := make([][]byte, benchPool)
		for i := range pool {
			pool[i] = make([]byte, CellSize)
			if err := c.path.Seal(pool[i], 2, nil, nil); err != nil {
				b.Fatal(err)
			}
		}
		r := c.relays[0]
		benchForward(b, pool, r.Forward, func() { r.win = window{} })
	})
}

// benchForward passes the pool's cells through forward, forgetting the
// replay window each time round (reset) so that the pool can pass again.
func benchForward(b *testing.B, pool [][]byte, forward func([]byte) (bool, []byte, error), reset func()) {
	cell := make([]byte, CellSize)
	b.SetBytes(CellSize)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == benchPool {
			i = 0
			reset()
		}
		copy(cell, pool[i])
		i++
		if local, _, err := forward(cell); err != nil || local {
			b.Fatal(local, err)
		}
	}
}

func BenchmarkRelayBackward(b *testing.B) {
	r := newCircuit(b, 1).relays[0]
	cell := make([]byte, CellSize)
	b.SetBytes(CellSize)
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Backward(cell); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen3Hops(b *testing.B) {
	c := newCircuit(b, 3)
	pool := make([][]byte, benchPool)
	for i := range pool {
		pool[i] = c.backwardFrom(b, 2, bytes.Repeat([]byte{1}, 100))
	}
	cell := make([]byte, CellSize)
	b.SetBytes(CellSize)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == benchPool {
			i = 0
			for _, h := range c.path.hops {
				h.win = window{}
			}
		}
		copy(cell, pool[i])
		i++
		if hop, _, err := c.path.Open(cell); err != nil || hop != 2 {
			b.Fatal(hop, err)
		}
	}
}

func BenchmarkHandshake(b *testing.B) {
	n := newTestNode(b, "bench")
	b.ReportAllocs()
	for b.Loop() {
		client, msg, err := NewClientHandshake(nil, n.id, n.pub)
		if err != nil {
			b.Fatal(err)
		}
		reply, _, err := ServerHandshake(nil, n.id, n.keys, msg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := client.Finish(reply); err != nil {
			b.Fatal(err)
		}
	}
}
