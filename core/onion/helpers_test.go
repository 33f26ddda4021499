package onion

import (
	"crypto/sha256"
	"fmt"
	"io"
	"testing"

	"golang.org/x/crypto/chacha20"
)

// detRand is a deterministic byte stream (ChaCha20 keystream under
// SHA-256(label)) so tests and vectors are reproducible.
type detRand struct{ c *chacha20.Cipher }

func newDetRand(label string) io.Reader {
	key := sha256.Sum256([]byte(label))
	c, err := chacha20.NewUnauthenticatedCipher(key[:], make([]byte, chacha20.NonceSize))
	if err != nil {
		panic(err)
	}
	return &detRand{c: c}
}

func (r *detRand) Read(p []byte) (int, error) {
	clear(p)
	r.c.XORKeyStream(p, p)
	return len(p), nil
}

// testKeys derives fixed key material for a test hop.
func testKeys(label string) *Keys {
	k := &Keys{
		fwdKey: sha256.Sum256([]byte(label + "/Kf")),
		bwdKey: sha256.Sum256([]byte(label + "/Kb")),
		resume: sha256.Sum256([]byte(label + "/Kr")),
	}
	b := sha256.Sum256([]byte(label + "/bases"))
	k.fwdBase, k.bwdBase = counterBase(b[:]), counterBase(b[4:])
	return k
}

// clone copies key material that AddHop or NewRelay will wipe.
func (k *Keys) clone() *Keys { c := *k; return &c }

// circuit is an initiator's path and the matching relays, and the keys
// they were made from.
type circuit struct {
	path   *Path
	relays []*Relay
	keys   []*Keys
}

func newCircuit(t testing.TB, n int) *circuit {
	t.Helper()
	c := &circuit{path: NewPath()}
	for i := range n {
		k := testKeys(fmt.Sprintf("circuit%d/hop%d", n, i))
		c.keys = append(c.keys, k.clone())
		if err := c.path.AddHop(k.clone()); err != nil {
			t.Fatal(err)
		}
		c.relays = append(c.relays, NewRelay(k))
	}
	return c
}

func testPayload(label string, n int) []byte {
	p := make([]byte, n)
	if _, err := io.ReadFull(newDetRand(label), p); err != nil {
		panic(err)
	}
	return p
}

// padded returns p zero-padded to PayloadSize.
func padded(p []byte) []byte {
	out := make([]byte, PayloadSize)
	copy(out, p)
	return out
}

// backwardFrom has hop j originate payload and hops j−1..0 relay it,
// returning the cell as it arrives at the initiator.
func (c *circuit) backwardFrom(t testing.TB, j int, payload []byte) []byte {
	t.Helper()
	cell := make([]byte, CellSize)
	if err := c.relays[j].Originate(cell, payload, nil); err != nil {
		t.Fatal(err)
	}
	for i := j - 1; i >= 0; i-- {
		if err := c.relays[i].Backward(cell); err != nil {
			t.Fatal(err)
		}
	}
	return cell
}

// Test shortcuts that put a circuit's counters where a long-lived circuit
// would have them, deriving the key generations on the way.

// skipForward makes next the forward counter hop's next cell uses.
func (p *Path) skipForward(hop int, next uint32) {
	h := p.hops[hop]
	h.fwdCtr = next - 1
	h.fwd.advance(generation(next), false)
}

// skipBackward makes the path expect hop's backward counters from next on.
func (p *Path) skipBackward(hop int, next uint32) {
	h := p.hops[hop]
	h.win = window{top: next - 1}
	if next > 1 {
		h.bwd.advance(generation(next-1), true)
	}
}

// skipForward makes the relay expect forward counters from next on.
func (r *Relay) skipForward(next uint32) {
	r.win = window{top: next - 1}
	if next > 1 {
		r.fwd.advance(generation(next-1), true)
	}
}

// skipBackward makes next the backward counter the relay's next cell uses.
func (r *Relay) skipBackward(next uint32) {
	r.bwdCtr = next - 1
	r.bwd.advance(generation(next), false)
}

// chainAt is a chain standing at generation g under a made-up key, for
// tests about counters so high that deriving the real chain would be slow.
func chainAt(g uint32, label string) chain {
	k := sha256.Sum256([]byte(label))
	ch := newChain(&k, true)
	ch.gen = g
	return ch
}

// zeroReader is a random source of zeros, for cells whose padding does
// not matter.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }
