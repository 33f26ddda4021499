package node

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/link"
	"github.com/tarzan-net/tarzan/sdk/discovery"
)

// relayProofAttack plays an attacker at mAddr who holds desc, a descriptor
// that peer p signed and that lists mAddr (an address p once had, which
// the attacker holds now). The attacker gets the victim to probe mAddr,
// relays the probe to p (as it is, then with the attacker's own descriptor
// in it), moves p's signature onto desc and sends that proof to the victim
// from mAddr. After each proof the victim handles, check looks at the
// victim's view; relayProofAttack returns how many proofs it could send.
func relayProofAttack(t *testing.T, tn *testNet, victim, p *Node, m *rawPeer, desc []byte, check func()) int {
	t.Helper()
	mine := signedDescriptor(t, newIdentity(t), time.Now().Add(-time.Minute), time.Now().Add(time.Hour), nil, m.addr)
	start := m.count()
	// The victim probes any address it is told of.
	tn.disc[0].propose(discovery.Proposal{Addr: m.addr})
	probe, ok := m.await(link.TypeProbe, victim.Addr(), start, 5*time.Second)
	if !ok {
		t.Fatal("the victim never probed the attacker's address")
	}
	nonce, victimDesc, err := link.DecodeProbe(probe)
	if err != nil {
		t.Fatal(err)
	}
	sent := 0
	for _, carried := range [][]byte{victimDesc, mine} {
		relayed, err := link.EncodeProbe(nonce, carried)
		if err != nil {
			t.Fatal(err)
		}
		at := m.count()
		m.send(p.Addr(), relayed)
		proof, ok := m.await(link.TypeProof, p.Addr(), at, 2*time.Second)
		if !ok {
			t.Logf("P did not answer the relayed probe")
			continue
		}
		_, _, sig, err := link.DecodeProof(proof)
		if err != nil {
			t.Fatal(err)
		}
		handled := func() uint64 {
			return victim.Stat(EventAdmitted) + victim.Stat(DropProofInvalid) + victim.Stat(DropDescriptorInvalid) +
				victim.Stat("drop_descriptor_older") + victim.Stat("drop_descriptor_lifetime")
		}
		h0 := handled()
		m.send(victim.Addr(), proofFrame(nonce, desc, sig))
		sent++
		waitFor(t, "the victim to handle the relayed proof", 3*time.Second, func() bool { return handled() > h0 })
		check()
	}
	return sent
}

// TestAttackRelayedProofMovesPeer: an attacker relays the victim's probe
// to P and P's proof back, claiming P at the attacker's address with a
// descriptor of P's that lists it. The victim must keep P where P proved
// itself.
func TestAttackRelayedProofMovesPeer(t *testing.T) { synctest.Test(t, testAttackRelayedProofMovesPeer) }

func testAttackRelayedProofMovesPeer(t *testing.T) {
	tn := startNet(t, 4, 2, nil)
	victim, p := tn.nodes[0], tn.nodes[1]
	held, ok := victim.view.Get(p.id)
	if !ok {
		t.Fatal("victim does not know P")
	}
	m := newRawPeer(tn, netip.MustParseAddrPort("127.250.0.1:7700"))
	// A descriptor of P's as new as the one the victim holds, with P's
	// keys, that lists the attacker's address.
	cur := mustParse(t, p.Descriptor())
	desc := signedDescriptor(t, p.opts.Identity, cur.Published, cur.Expires, &cur.LinkKey, m.addr)

	before := victim.Stats()
	sent := relayProofAttack(t, tn, victim, p, m, desc, func() {
		got, ok := victim.view.Get(p.id)
		if !ok {
			t.Fatal("victim dropped P")
		}
		if got.Addr != held.Addr {
			t.Fatalf("ATTACK SUCCEEDED: the victim moved P from %v to the attacker's %v (stats delta %v)", held.Addr, got.Addr, statsDelta(before, victim.Stats()))
		}
	})
	t.Logf("attacker sent %d relayed proofs; P stays at %v; victim stats delta %v", sent, held.Addr, statsDelta(before, victim.Stats()))
}

// TestAttackRollbackOlderDescriptor: the same relay with an older, validly
// signed descriptor of P (older keys) that lists the attacker's address.
// The victim must keep P's newer descriptor and keys.
func TestAttackRollbackOlderDescriptor(t *testing.T) {
	synctest.Test(t, testAttackRollbackOlderDescriptor)
}

func testAttackRollbackOlderDescriptor(t *testing.T) {
	tn := startNet(t, 4, 2, nil)
	victim, p := tn.nodes[0], tn.nodes[1]
	held, ok := victim.view.Get(p.id)
	if !ok {
		t.Fatal("victim does not know P")
	}
	m := newRawPeer(tn, netip.MustParseAddrPort("127.250.0.1:7700"))
	cur := mustParse(t, p.Descriptor())
	old := signedDescriptor(t, p.opts.Identity, cur.Published.Add(-time.Hour), cur.Expires.Add(-time.Hour), nil, m.addr)

	before := victim.Stats()
	sent := relayProofAttack(t, tn, victim, p, m, old, func() {
		got, ok := victim.view.Get(p.id)
		if !ok {
			t.Fatal("victim dropped P")
		}
		if got.Desc.LinkKey != held.Desc.LinkKey || got.Desc.OnionKey != held.Desc.OnionKey || !got.Desc.Published.Equal(held.Desc.Published) {
			t.Fatalf("ATTACK SUCCEEDED: the victim rolled P back to a descriptor published %v (held %v), at %v (stats delta %v)",
				got.Desc.Published, held.Desc.Published, got.Addr, statsDelta(before, victim.Stats()))
		}
		if got.Addr != held.Addr {
			t.Fatalf("ATTACK SUCCEEDED: the victim moved P to %v", got.Addr)
		}
	})
	t.Logf("attacker sent %d relayed proofs; P keeps its keys and address; victim stats delta %v", sent, statsDelta(before, victim.Stats()))
}

// statsDelta lists the counters that moved.
func statsDelta(before, after map[string]uint64) map[string]uint64 {
	out := map[string]uint64{}
	for k, v := range after {
		if d := v - before[k]; d != 0 && k != EventFramesIn && k != EventFramesOut && k != EventPaddingIn && k != EventPaddingOut {
			out[k] = d
		}
	}
	return out
}
