package node

import (
	"crypto/rand"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"testing"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/sdk/transport/transporttest"
)

// Circuit IDs and session indices go on the wire in clear, and path
// choices follow from the same generator: whoever knows its state from
// what it has seen predicts the rest. Here two nodes get identical
// options, their randomness source included (a seeded one, as the
// simulator and tests use): the generator that draws circuit IDs and
// path choices must still be keyed from the operating system's CSPRNG,
// so the two nodes' draws differ. With a generator seeded from the
// options (v1: PCG from Options.Rand) they are equal draw for draw.
func TestAttackPredictableCircuitIDs(t *testing.T) {
	id, err := identity.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	peer := identity.ID{0xff} // any peer: only the ID order matters
	net := transporttest.NewNetwork()
	draws := func() (circs []uint32, choices []int) {
		seeded := mrand.NewChaCha8([32]byte{1, 2, 3})
		n, err := New(Options{
			Identity: id, Transport: net.NewTransport(), Listen: addrOf(0),
			Discovery: newListDiscovery(nil), Rand: io.Reader(seeded),
			Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			t.Fatal(err)
		}
		n.mu.Lock()
		for range 16 {
			circs = append(circs, n.newCircIDLocked(peer))
		}
		n.mu.Unlock()
		for range 16 {
			choices = append(choices, n.randIntN(1000))
		}
		return circs, choices
	}
	c1, p1 := draws()
	c2, p2 := draws()
	if slices.Equal(c1, c2) {
		t.Errorf("two nodes with the same options drew the same circuit IDs: %x", c1)
	}
	if slices.Equal(p1, p2) {
		t.Errorf("two nodes with the same options made the same path choices: %v", p1)
	}
}
