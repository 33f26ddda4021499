package node

import (
	"bytes"
	"crypto/ed25519"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/link"
)

// TestAttackProbeReflection: an attacker sends probes whose descriptors
// (fresh identities of its own) advertise a third party's address. The
// victim must send that third party nothing, and count the probes.
func TestAttackProbeReflection(t *testing.T) { synctest.Test(t, testAttackProbeReflection) }

func testAttackProbeReflection(t *testing.T) {
	tn := startNet(t, 3, 2, nil)
	victim := tn.nodes[0]
	m := newRawPeer(tn, netip.MustParseAddrPort("127.250.0.1:7700"))
	third := newRawPeer(tn, netip.MustParseAddrPort("127.251.0.1:7700"))
	const probes = 40
	frames := make([][]byte, probes)
	for i := range frames {
		d := signedDescriptor(t, newIdentity(t), time.Now().Add(-time.Minute), time.Now().Add(time.Hour), nil, third.addr)
		var nonce [32]byte
		nonce[0] = byte(i)
		f, err := link.EncodeProbe(nonce, d)
		if err != nil {
			t.Fatal(err)
		}
		frames[i] = f
	}
	before := victim.Stats()
	m.sendPaced(victim, victim.Addr(), probes, func(i int) []byte { return frames[i] })
	time.Sleep(300 * time.Millisecond) // anything the probes triggered has gone out by now
	after := victim.Stats()
	if got := third.count(); got != 0 {
		t.Fatalf("ATTACK SUCCEEDED: %d probes from the attacker made the victim send %d datagrams (%d bytes) to the third party (stats delta %v)",
			probes, got, got*link.FrameSize, statsDelta(before, after))
	}
	reflect := after["drop_probe_reflect"] - before["drop_probe_reflect"]
	limited := after["drop_probe_ratelimit"] - before["drop_probe_ratelimit"]
	if reflect == 0 || reflect+limited != probes {
		t.Fatalf("drop_probe_reflect moved by %d and drop_probe_ratelimit by %d; want the first > 0 and both to add up to the %d probes (delta %v)",
			reflect, limited, probes, statsDelta(before, after))
	}
	if got := m.countType(link.TypeProof); got != 0 {
		t.Errorf("the attacker got %d proofs for probes whose descriptors do not list its address", got)
	}
	t.Logf("third party got nothing; drop_probe_reflect +%d, drop_probe_ratelimit +%d", reflect, limited)
}

// countingParse wraps descriptor.Parse to count the signature
// verifications of descriptors that carry key (the attacker's identity),
// leaving out the honest nodes' background.
type countingParse struct {
	key ed25519.PublicKey
	n   atomicCounter
}

func (c *countingParse) parse(b []byte, now time.Time) (*descriptor.Descriptor, error) {
	if len(c.key) > 0 && bytes.Contains(b, c.key) {
		c.n.add()
	}
	return descriptor.Parse(b, now)
}

// TestAttackProbeFlood: 2,000 probes from one address, then 2,000 from
// 2,000 addresses, each with a valid descriptor listing its source. The
// victim's signature checks and signatures stay within its limits, the
// rate-limit counter takes the rest, and its links stay up.
func TestAttackProbeFlood(t *testing.T) { synctest.Test(t, testAttackProbeFlood) }

func testAttackProbeFlood(t *testing.T) {
	att := newIdentity(t)
	verifies := &countingParse{key: att.Public()}
	tn := startNet(t, 4, 2, func(i int, o *Options) {
		if i == 0 {
			o.ParseDescriptor = verifies.parse
		}
	})
	victim := tn.nodes[0]
	const flood = 2000

	// One source.
	m := newRawPeer(tn, netip.MustParseAddrPort("127.250.0.1:7700"))
	d := signedDescriptor(t, att, time.Now().Add(-time.Minute), time.Now().Add(time.Hour), nil, m.addr)
	probe := func(i int) []byte {
		var nonce [32]byte
		nonce[0], nonce[1] = byte(i), byte(i>>8)
		f, _ := link.EncodeProbe(nonce, d)
		return f
	}
	frames := make([][]byte, flood)
	for i := range frames {
		frames[i] = probe(i)
	}
	v0, s0, start := verifies.n.load(), victim.Stats(), time.Now()
	m.sendPaced(victim, victim.Addr(), flood, func(i int) []byte { return frames[i] })
	elapsed := time.Since(start)
	time.Sleep(200 * time.Millisecond)
	s1 := victim.Stats()
	pk := int(verifies.n.load()-v0) + m.countType(link.TypeProof)
	bound := publicKeyBound(2, 8, elapsed) // per-source defaults (ProbeRate, ProbeBurst), one verify and one signature each
	t.Logf("one source: %d probes in %v cost the victim %d public-key operations (bound %d); delta %v", flood, elapsed.Round(time.Millisecond), pk, bound, statsDelta(s0, s1))
	if pk > bound {
		t.Errorf("ATTACK SUCCEEDED: one source's %d probes cost %d public-key operations, bound %d", flood, pk, bound)
	}
	if got := s1["drop_probe_ratelimit"] - s0["drop_probe_ratelimit"]; got < flood-uint64(bound) {
		t.Errorf("drop_probe_ratelimit moved by %d, want >= %d", got, flood-bound)
	}

	// Many sources: a fresh address (and descriptor listing it) per probe.
	const sources = flood
	srcs := make([]*rawPeer, sources)
	for i := range srcs {
		srcs[i] = newRawPeer(tn, netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 252, byte(i >> 8), byte(i)}), 7700))
	}
	many := make([][]byte, sources)
	for i := range many {
		dd := signedDescriptor(t, att, time.Now().Add(-time.Minute), time.Now().Add(time.Hour), nil, srcs[i].addr)
		var nonce [32]byte
		nonce[0], nonce[1] = byte(i), byte(i>>8)
		many[i], _ = link.EncodeProbe(nonce, dd)
	}
	v0, s0, start = verifies.n.load(), victim.Stats(), time.Now()
	f0 := victim.Stat(EventFramesIn)
	for i := range srcs {
		for int(victim.Stat(EventFramesIn)-f0) < i-1000 {
			time.Sleep(time.Millisecond)
		}
		srcs[i].send(victim.Addr(), many[i])
	}
	waitFor(t, "the victim to read the spread flood", 30*time.Second, func() bool { return int(victim.Stat(EventFramesIn)-f0) >= sources })
	elapsed = time.Since(start)
	time.Sleep(200 * time.Millisecond)
	s1 = victim.Stats()
	proofs := 0
	for _, r := range srcs {
		proofs += r.countType(link.TypeProof)
	}
	pk = int(verifies.n.load()-v0) + proofs
	bound = publicKeyBound(200, 400, elapsed) // global defaults (ProbeGlobalRate, ProbeGlobalBurst)
	t.Logf("%d sources: %d probes in %v cost the victim %d public-key operations (bound %d); delta %v", sources, sources, elapsed.Round(time.Millisecond), pk, bound, statsDelta(s0, s1))
	if pk > bound {
		t.Errorf("ATTACK SUCCEEDED: %d probes from %d sources cost %d public-key operations, bound %d", sources, sources, pk, bound)
	}
	if got := s1["drop_probe_ratelimit"] - s0["drop_probe_ratelimit"]; got == 0 {
		t.Errorf("drop_probe_ratelimit did not move")
	}

	// Honest links are untouched.
	waitFor(t, "victim's mimic links up", 10*time.Second, func() bool {
		for _, m := range victim.Mimics() {
			if !m.Up {
				return false
			}
		}
		return true
	})
}

// publicKeyBound is what a token bucket of rate and burst lets through in
// elapsed (plus a quarter second of slack for the victim's own timers), at
// two public-key operations per admitted request.
func publicKeyBound(rate float64, burst int, elapsed time.Duration) int {
	return 2 * (burst + int(rate*(elapsed+250*time.Millisecond).Seconds()) + 1)
}

// TestAttackHandshakeFlood: 2,000 link handshake initiations from a
// mimic's IP address on another port, each a valid Noise message from an
// identity that is no mimic of the victim. The victim's key agreements
// stay within the per-source limit, the flood is counted as rate-limited
// (not as non-mimic), and an honest mimic's fresh handshake from its own
// address still completes.
func TestAttackHandshakeFlood(t *testing.T) { synctest.Test(t, testAttackHandshakeFlood) }

func testAttackHandshakeFlood(t *testing.T) {
	tn := startNet(t, 6, 2, nil)
	victim := tn.nodes[0]
	var mimic *Node
	for _, ms := range victim.Mimics() {
		if n := tn.byID(ms.ID); n != nil && n.isMimic(victim.id) {
			mimic = n
			break
		}
	}
	if mimic == nil {
		t.Fatal("the victim has no mimic")
	}
	m := newRawPeer(tn, sameIPOtherPort(mimic.Addr()))
	att := newIdentity(t)
	st, err := link.NewStatic(randReader{})
	if err != nil {
		t.Fatal(err)
	}
	vd := mustParse(t, victim.Descriptor())
	_, init, err := link.Initiate(st, att.ID(), vd.LinkKey, 7, randReader{}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	const flood = 2000
	keyAgreements := func() uint64 {
		// Before any limit, every initiation from a mimic's IP reached
		// the Diffie-Hellman; what it cost shows up as one of these.
		return victim.Stat(DropHandshakeNonMimic) + victim.Stat(DropHandshakeInvalid)
	}
	k0, s0, start := keyAgreements(), victim.Stats(), time.Now()
	m.sendPaced(victim, victim.Addr(), flood, func(int) []byte { return init })
	elapsed := time.Since(start)

	// An honest rekey from the mimic's own address while the flood goes
	// on at about 2,000 initiations a second.
	l := mimic.link(victim.id, false)
	if l == nil {
		t.Fatal("mimic has no link to the victim")
	}
	stop := make(chan struct{})
	flooding := make(chan struct{})
	go func() {
		defer close(flooding)
		batch := make([][]byte, 10)
		for i := range batch {
			batch[i] = init
		}
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				m.send(victim.Addr(), batch...)
			}
		}
	}()
	r0 := victim.Stat(DropHandshakeRateLimit)
	waitFor(t, "the ongoing flood to reach the victim", 5*time.Second, func() bool { return victim.Stat(DropHandshakeRateLimit) > r0+50 })
	l.mu.Lock()
	old := l.cur
	l.mu.Unlock()
	mimic.initiate(l)
	waitFor(t, "the mimic's fresh handshake to complete under the flood", 5*time.Second, func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.cur != nil && l.cur != old
	})
	close(stop)
	<-flooding
	elapsed = time.Since(start)
	s1 := victim.Stats()
	ka := int(keyAgreements() - k0)
	bound := publicKeyBound(4, 16, elapsed) / 2 // per-source defaults (HandshakeRate, HandshakeBurst), one initiation each
	t.Logf("%d initiations, then more while the mimic rekeyed, in %v: %d reached key agreement (bound %d); delta %v", flood, elapsed.Round(time.Millisecond), ka, bound, statsDelta(s0, s1))
	if ka > bound {
		t.Errorf("ATTACK SUCCEEDED: %d initiations from %v made the victim run %d key agreements, bound %d", flood, m.addr, ka, bound)
	}
	if got := s1["drop_handshake_ratelimit"] - s0["drop_handshake_ratelimit"]; got < uint64(flood-bound) {
		t.Errorf("drop_handshake_ratelimit moved by %d, want >= %d", got, flood-bound)
	}
}

type randReader struct{}

func (randReader) Read(p []byte) (int, error) { return cryptoRandRead(p) }
