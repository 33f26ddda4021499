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

// testKeys derives fixed key material for hop i of a test circuit.
func testKeys(label string) *Keys {
	k := &Keys{}
	for i, dst := range []*[32]byte{&k.fwdCipher, &k.fwdMAC, &k.bwdCipher, &k.bwdOrigin, &k.bwdRelay} {
		*dst = sha256.Sum256(fmt.Appendf(nil, "%s/%d", label, i))
	}
	return k
}

// circuit is an initiator's path and the matching relays.
type circuit struct {
	path   *Path
	relays []*Relay
}

func newCircuit(t testing.TB, n int) *circuit {
	t.Helper()
	c := &circuit{path: NewPath()}
	for i := range n {
		k := testKeys(fmt.Sprintf("circuit%d/hop%d", n, i))
		if err := c.path.AddHop(k); err != nil {
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

func (r *Relay) keysCopy() *Keys { k := r.keys; return &k }
