package onion

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"testing"
)

// forwardThrough seals payload for the last hop of c.path and runs it
// through relays (the current path's relays, in order); it returns what
// the last relay delivered.
func forwardThrough(t *testing.T, p *Path, relays []*Relay, payload []byte) []byte {
	t.Helper()
	cell := make([]byte, CellSize)
	if err := p.Seal(cell, len(relays)-1, payload, nil); err != nil {
		t.Fatal(err)
	}
	for i, r := range relays {
		local, got, err := r.Forward(cell)
		if err != nil {
			t.Fatalf("hop %d: %v", i, err)
		}
		if local != (i == len(relays)-1) {
			t.Fatalf("hop %d: local = %v", i, local)
		}
		if local {
			return bytes.Clone(got)
		}
	}
	return nil
}

func backwardThrough(t *testing.T, p *Path, relays []*Relay, payload []byte) (int, []byte) {
	t.Helper()
	cell := make([]byte, CellSize)
	last := len(relays) - 1
	if err := relays[last].Originate(cell, payload, nil); err != nil {
		t.Fatal(err)
	}
	for i := last - 1; i >= 0; i-- {
		if err := relays[i].Backward(cell); err != nil {
			t.Fatal(err)
		}
	}
	hop, got, err := p.Open(cell)
	if err != nil {
		t.Fatal(err)
	}
	return hop, bytes.Clone(got)
}

// A 3-hop path loses its middle: the last hop is set aside, a new middle
// added, the last hop rejoined with its relay state (keys, counters,
// windows) untouched, and cells flow both ways again, across a gap of
// cells lost while the path was broken. The old middle's keys are wiped.
func TestRejoinKeepsLastHop(t *testing.T) {
	c := newCircuit(t, 3)
	exit := c.relays[2]
	msg := testPayload("rejoin/fwd", 100)
	if got := forwardThrough(t, c.path, c.relays, msg); !bytes.Equal(got, padded(msg)) {
		t.Fatal("forward cell before the rejoin garbled")
	}
	// Cells lost in the gap: the path's counters run ahead of the exit's.
	for range 50 {
		cell := make([]byte, CellSize)
		if err := c.path.Seal(cell, 2, msg, nil); err != nil {
			t.Fatal(err)
		}
	}
	for range 70 {
		cell := make([]byte, CellSize)
		if err := exit.Originate(cell, msg, nil); err != nil {
			t.Fatal(err)
		}
	}
	oldMiddle := c.path.hops[1]
	if err := c.path.SetAside(1); err != nil {
		t.Fatal(err)
	}
	if c.path.Len() != 1 || !c.path.Aside() {
		t.Fatalf("after SetAside(1): Len %d, Aside %v", c.path.Len(), c.path.Aside())
	}
	if oldMiddle.fwd.cur != nil || oldMiddle.bwd.cur != nil || oldMiddle.rj.resume != ([32]byte{}) {
		t.Error("the dropped middle hop's keys were not wiped")
	}
	if err := c.path.Seal(make([]byte, CellSize), 1, msg, nil); !errors.Is(err, ErrNoSuchHop) {
		t.Fatalf("sealing to the hop set aside: %v, want ErrNoSuchHop", err)
	}
	nk := testKeys("rejoin/new-middle")
	if err := c.path.AddHop(nk.clone()); err != nil {
		t.Fatal(err)
	}
	newMiddle := NewRelay(nk)
	var id, b [32]byte
	id[0], b[0] = 1, 9
	rm, err := c.path.RejoinMessage(id, b)
	if err != nil {
		t.Fatal(err)
	}
	X, _ := exit.RejoinPoint()
	if !bytes.Equal(rm[64:], X[:]) {
		t.Fatal("the rejoin message does not carry the exit's expected point")
	}
	reply, next, err := exit.AcceptRejoin(nil, rm)
	if err != nil {
		t.Fatal(err)
	}
	if next == X {
		t.Fatal("the exit's rejoin point did not move on")
	}
	if err := c.path.Rejoin(reply); err != nil {
		t.Fatal(err)
	}
	if c.path.Len() != 3 || c.path.Aside() {
		t.Fatalf("after Rejoin: Len %d, Aside %v", c.path.Len(), c.path.Aside())
	}
	relays := []*Relay{c.relays[0], newMiddle, exit}
	for i := range 3 {
		if got := forwardThrough(t, c.path, relays, msg); !bytes.Equal(got, padded(msg)) {
			t.Fatalf("forward cell %d after the rejoin garbled", i)
		}
		hop, got := backwardThrough(t, c.path, relays, msg)
		if hop != 2 || !bytes.Equal(got, padded(msg)) {
			t.Fatalf("backward cell %d after the rejoin: hop %d", i, hop)
		}
	}
	// The initiator's next rejoin uses the exit's next point.
	if err := c.path.SetAside(1); err != nil {
		t.Fatal(err)
	}
	rm2, err := c.path.RejoinMessage(id, b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rm2[64:], next[:]) {
		t.Fatal("second rejoin: initiator and exit disagree on the point")
	}
}

// Attack: a relay that saw a rejoin message (it carried it) replays it.
// The point is spent: the exit refuses it and its state does not move.
func TestAttackRejoinReplaySpent(t *testing.T) {
	c := newCircuit(t, 2)
	exit := c.relays[1]
	if err := c.path.SetAside(1); err != nil {
		t.Fatal(err)
	}
	rm, _ := c.path.RejoinMessage([32]byte{1}, [32]byte{2})
	reply, next, err := exit.AcceptRejoin(nil, rm)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.path.Rejoin(reply); err != nil {
		t.Fatal(err)
	}
	if _, _, err := exit.AcceptRejoin(nil, rm); !errors.Is(err, ErrHandshake) {
		t.Fatalf("replayed rejoin: %v, want ErrHandshake", err)
	}
	if X, _ := exit.RejoinPoint(); X != next {
		t.Fatal("a refused replay moved the exit's rejoin point")
	}
}

// Attack: a relay that owns no circuit at the exit forges rejoin messages:
// a random point, the circuit's original handshake point, the point of a
// circuit built with other keys. None is accepted.
func TestAttackRejoinForged(t *testing.T) {
	c := newCircuit(t, 1)
	exit := c.relays[0]
	other := newCircuit(t, 2) // another circuit's initiator
	if err := other.path.SetAside(1); err != nil {
		t.Fatal(err)
	}
	otherMsg, _ := other.path.RejoinMessage([32]byte{1}, [32]byte{2})
	random := make([]byte, ClientMsgLen)
	rand.Read(random)
	_, orig, err := NewClientHandshake(nil, [32]byte{1}, mustPub(t))
	if err != nil {
		t.Fatal(err)
	}
	for name, msg := range map[string][]byte{"random": random, "original handshake": orig, "other circuit": otherMsg} {
		if _, _, err := exit.AcceptRejoin(nil, msg); !errors.Is(err, ErrHandshake) {
			t.Errorf("%s: %v, want ErrHandshake", name, err)
		}
	}
	// A forged reply (no Kr) is refused by the initiator; the hop stays aside.
	if err := c.path.SetAside(0); err != nil {
		t.Fatal(err)
	}
	forged := make([]byte, ServerMsgLen)
	rand.Read(forged)
	if err := c.path.Rejoin(forged); !errors.Is(err, ErrHandshake) {
		t.Fatalf("forged rejoin reply: %v, want ErrHandshake", err)
	}
	if !c.path.Aside() {
		t.Fatal("a forged reply took the hop out of aside")
	}
}

func mustPub(t *testing.T) [32]byte {
	_, pub, err := GenerateOnionKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// The hop that carries a rejoin cannot tell it from a handshake by any
// field: same sizes, same ID || B prefix, X a point of the prime-order
// subgroup like any ephemeral (a valid public key whose DH with any key is
// not degenerate, top bit clear as for every X25519 output), and a reply
// Y || 32 bytes with Y such a point too.
func TestRejoinLooksLikeHandshake(t *testing.T) {
	nodeID := [32]byte{7}
	priv, pub, err := GenerateOnionKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 64 {
		_, hs, err := NewClientHandshake(nil, nodeID, pub)
		if err != nil {
			t.Fatal(err)
		}
		hsReply, _, err := ServerHandshake(nil, nodeID, OnionKeys{Current: &priv}, hs)
		if err != nil {
			t.Fatal(err)
		}
		c := newCircuit(t, 1)
		if err := c.path.SetAside(0); err != nil {
			t.Fatal(err)
		}
		rm, err := c.path.RejoinMessage(nodeID, pub)
		if err != nil {
			t.Fatal(err)
		}
		rmReply, _, err := c.relays[0].AcceptRejoin(nil, rm)
		if err != nil {
			t.Fatal(err)
		}
		if len(rm) != len(hs) || len(rmReply) != len(hsReply) {
			t.Fatalf("sizes: rejoin %d/%d, handshake %d/%d", len(rm), len(rmReply), len(hs), len(hsReply))
		}
		if !bytes.Equal(rm[:64], hs[:64]) {
			t.Fatal("the rejoin message's ID || B differ from a handshake's to the same node")
		}
		for name, p := range map[string][]byte{"rejoin X": rm[64:], "rejoin Y": rmReply[:32], "handshake X": hs[64:], "handshake Y": hsReply[:32]} {
			if p[31]&0x80 != 0 {
				t.Fatalf("%s #%d has its top bit set", name, i)
			}
			pk, err := ecdh.X25519().NewPublicKey(p)
			if err != nil {
				t.Fatalf("%s #%d is not a public key: %v", name, i, err)
			}
			sk, _ := ecdh.X25519().GenerateKey(rand.Reader)
			if _, err := sk.ECDH(pk); err != nil {
				t.Fatalf("%s #%d is a low-order point: %v", name, i, err)
			}
		}
		if err := c.path.Rejoin(rmReply); err != nil {
			t.Fatal(err)
		}
	}
}

// ntor v3's okm carries Kr: both ends derive the same resume key, and it
// differs from every other key it came with.
func TestHandshakeResumeKey(t *testing.T) {
	nodeID := [32]byte{3}
	priv, pub, _ := GenerateOnionKey(nil)
	hs, msg, err := NewClientHandshake(nil, nodeID, pub)
	if err != nil {
		t.Fatal(err)
	}
	reply, sk, err := ServerHandshake(nil, nodeID, OnionKeys{Current: &priv}, msg)
	if err != nil {
		t.Fatal(err)
	}
	ck, err := hs.Finish(reply)
	if err != nil {
		t.Fatal(err)
	}
	if ck.resume != sk.resume || ck.resume == ([32]byte{}) {
		t.Fatal("the ends do not share a non-zero resume key")
	}
	if ck.resume == ck.fwdKey || ck.resume == ck.bwdKey {
		t.Fatal("the resume key equals a cell key")
	}
}

// Cells lost while the path was broken can be more than the windows'
// usual look-ahead (maxAhead generations): a download keeps the exit
// sending into the dead path until it hears of the new one. The first
// cell each way after a rejoin may jump up to maxResync generations; a
// forged one there is refused without moving the chain, and once a cell
// has verified the usual bound holds again.
func TestRejoinAcrossLargeGap(t *testing.T) {
	const jump = 5 * ratchetEvery // 5 generations: beyond maxAhead
	c := newCircuit(t, 2)
	exit := c.relays[1]
	msg := testPayload("rejoin/gap", 64)
	exit.skipBackward(jump + 1)
	c.path.skipForward(1, jump+1)
	// fromExit has the exit originate a cell (tampered with before hop 1
	// relays it if tamper) and hop 1 relay it.
	fromExit := func(tamper bool) []byte {
		cell := make([]byte, CellSize)
		if err := exit.Originate(cell, msg, nil); err != nil {
			t.Fatal(err)
		}
		if tamper {
			cell[ctrSize] ^= 1 // the exit's tag
		}
		if err := c.relays[0].Backward(cell); err != nil {
			t.Fatal(err)
		}
		return cell
	}
	if _, _, err := c.path.Open(fromExit(false)); !errors.Is(err, ErrTagMismatch) {
		t.Fatalf("a jump of %d cells without a rejoin: %v, want ErrTagMismatch", jump, err)
	}
	if err := c.path.SetAside(1); err != nil {
		t.Fatal(err)
	}
	rm, _ := c.path.RejoinMessage([32]byte{1}, [32]byte{2})
	reply, _, err := exit.AcceptRejoin(nil, rm)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.path.Rejoin(reply); err != nil {
		t.Fatal(err)
	}
	// A forged cell with a far counter: refused, nothing adopted.
	if _, _, err := c.path.Open(fromExit(true)); !errors.Is(err, ErrTagMismatch) {
		t.Fatalf("forged far cell: %v, want ErrTagMismatch", err)
	}
	if g := c.path.hops[1].bwd.gen; g != 0 {
		t.Fatalf("a forged cell moved the chain to generation %d", g)
	}
	if hop, got, err := c.path.Open(fromExit(false)); err != nil || hop != 1 || !bytes.Equal(got, padded(msg)) {
		t.Fatalf("the first cell after the rejoin: hop %d, %v", hop, err)
	}
	if got := forwardThrough(t, c.path, c.relays, msg); !bytes.Equal(got, padded(msg)) {
		t.Fatal("the first forward cell after the rejoin garbled")
	}
	for i := range 3 {
		if hop, got := backwardThrough(t, c.path, c.relays, msg); hop != 1 || !bytes.Equal(got, padded(msg)) {
			t.Fatalf("backward cell %d after the jump", i)
		}
	}
	// The resync is over: a second jump is refused again.
	exit.skipBackward(exit.bwdCtr + jump)
	if _, _, err := c.path.Open(fromExit(false)); !errors.Is(err, ErrTagMismatch) {
		t.Fatalf("a second jump after the resync: %v, want ErrTagMismatch", err)
	}
}
