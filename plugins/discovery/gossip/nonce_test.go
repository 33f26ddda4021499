package gossip

import (
	"context"
	crand "crypto/rand"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/identity"
)

// TestAttackNoncePredictable: a DIGEST's nonce is what every answer must
// echo, so whoever predicts it can forge answers from any address. The
// backend's statistical generator (it picks targets and pages) is seeded
// from the source a test gives it; the test plays an attacker who knows
// that generator's state and tries to predict the nonces on the wire.
func TestAttackNoncePredictable(t *testing.T) {
	o := simOptions()
	o.bootstrap = []netip.AddrPort{netip.MustParseAddrPort("10.9.9.9:7000")}
	const s1, s2 = 42, 43
	g := newGossip(o, func() time.Time { return t0 }, rand.NewPCG(s1, s2), true)
	id, err := identity.Generate(crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	d := &descriptor.Descriptor{Addrs: []descriptor.Addr{{Transport: "udp", AddrPort: netip.MustParseAddrPort("10.1.1.1:7000")}},
		Published: t0, Expires: t0.Add(time.Hour)}
	crand.Read(d.LinkKey[:])
	crand.Read(d.OnionKey[:])
	if _, err := d.Sign(id); err != nil {
		t.Fatal(err)
	}
	if err := g.Start(d.Encoded()); err != nil {
		t.Fatal(err)
	}
	// What the attacker expects: the generator's next outputs.
	mirror := rand.New(rand.NewPCG(s1, s2))
	predicted := map[uint64]bool{}
	for range 4096 {
		predicted[mirror.Uint64()] = true
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	seen, hits := 0, 0
	for range 20 {
		g.Round()
		msgs, _ := g.Outbox(done)
		for _, m := range msgs {
			msg, err := decode(m.Data)
			if err != nil {
				t.Fatal(err)
			}
			seen++
			if predicted[msg.nonce] {
				hits++
			}
		}
	}
	if seen == 0 {
		t.Fatal("no message sent")
	}
	if hits > 0 {
		t.Fatalf("ATTACK SUCCEEDED: %d of %d nonces on the wire predicted from the generator's state", hits, seen)
	}
}

// TestNewSeedsStrongGenerators: the backend real nodes run (New) draws
// nonces from ChaCha8 seeded by crypto/rand, not from a PCG.
func TestNewSeedsStrongGenerators(t *testing.T) {
	d, err := New(map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	g := d.(*Gossip)
	for name, r := range map[string]*rand.Rand{"nonces": g.nonces, "choices": g.rng} {
		src := reflect.ValueOf(r).Elem().FieldByName("src").Elem().Type().String()
		if src != "*rand.ChaCha8" {
			t.Errorf("%s come from a %s, want *rand.ChaCha8", name, src)
		}
	}
}
