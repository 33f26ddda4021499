package dtls

import (
	"crypto/ed25519"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

func TestOptions(t *testing.T) {
	if _, err := New(map[string]string{"queue": "16", "max_handshakes": "8", "handshake_timeout_ms": "2000"}); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	for _, bad := range []map[string]string{{"queue": "0"}, {"nope": "1"}, {"handshake_timeout_ms": "x"}} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%v) succeeded; want an error", bad)
		}
	}
}

func TestEndorsement(t *testing.T) {
	c, id := identity(t)
	certPub := c.CertKey.Public().(ed25519.PublicKey)
	if !transport.VerifyEndorsement(id, certPub, c.Endorsement) {
		t.Fatal("a fresh endorsement does not verify")
	}
	other, otherID := identity(t)
	if transport.VerifyEndorsement(otherID, certPub, c.Endorsement) {
		t.Error("endorsement verifies under another identity")
	}
	if transport.VerifyEndorsement(id, certPub, c.Endorsement[:10]) {
		t.Error("a truncated endorsement verifies")
	}
	tr, _ := New(nil)
	defer tr.Close()
	forged := c
	forged.Endorsement = other.Endorsement
	if err := tr.(transport.CredentialSetter).SetCredentials(forged); err == nil {
		t.Error("SetCredentials accepted an endorsement of another key")
	}

	// A certificate whose endorsement was made for another cert key.
	ic, err := newIdentityCert(c)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := verifyPeer(ic.cert.Certificate, nil); err != nil || !got.Equal(id) {
		t.Fatalf("verifyPeer(own cert) = %x, %v; want the identity", got, err)
	}
	if _, err := verifyPeer(ic.cert.Certificate, otherID); err == nil {
		t.Error("verifyPeer accepted a certificate of another identity than the expected one")
	}
	stolen := c
	stolen.CertKey = other.CertKey // endorsement is for c's cert key
	stolen.Endorsement = c.Endorsement
	if _, err := newIdentityCert(stolen); err == nil {
		t.Error("newIdentityCert accepted an endorsement of another cert key")
	}
}

func TestIdentityBinding(t *testing.T) {
	credA, idA := identity(t)
	credB, idB := identity(t)
	_, idX := identity(t)
	set := func(c transport.Credentials) func(transport.Transport) {
		return func(tr transport.Transport) {
			if err := tr.(transport.CredentialSetter).SetCredentials(c); err != nil {
				t.Fatal(err)
			}
		}
	}
	a := newPeer(t, "", set(credA))
	b := newPeer(t, "", set(credB))
	c := newPeer(t, "", nil) // ephemeral identity

	// a expects b's identity at b's address: the link comes up.
	if err := a.tr.(transport.PeerVerifier).SetPeer(b.addr, idB); err != nil {
		t.Fatal(err)
	}
	a.send(t, b.addr, []byte("hello b"))
	if from := b.expect(t, "hello b"); from != a.addr {
		t.Fatalf("source %v; want %v", from, a.addr)
	}
	b.send(t, a.addr, []byte("hello a"))
	a.expect(t, "hello a")
	if got, ok := b.tr.(*dtlsTransport).PeerIdentity(a.addr); !ok || !got.Equal(idA) {
		t.Errorf("b sees identity %x at a; want %x", got, idA)
	}

	// a expects someone else at c's address: the handshake is refused
	// and nothing is delivered either way.
	if err := a.tr.(transport.PeerVerifier).SetPeer(c.addr, idX); err != nil {
		t.Fatal(err)
	}
	a.send(t, c.addr, []byte("to c"))
	c.nothing(t, 300*time.Millisecond)
	if a.stats().Rejected == 0 {
		t.Errorf("stats %+v: want the impostor counted as rejected", a.stats())
	}
}

func TestOverheadFitsPath(t *testing.T) {
	b := newPeer(t, "", nil)
	nat := newNATBox(t, b.addr)
	a := newPeer(t, "", nil)

	full := strings.Repeat("x", MaxPayload)
	a.send(t, nat.addr(), []byte(full))
	b.expect(t, full)
	frame := strings.Repeat("f", transport.MaxDatagram)
	a.send(t, nat.addr(), []byte(frame))
	b.expect(t, frame)
	sizes := nat.forwarded()
	if !slices.Contains(sizes, MaxPayload+Overhead) || MaxPayload+Overhead != 1452 {
		t.Errorf("wire sizes %v; want one of %d (= 1452, a full IPv6 UDP payload on a 1500-byte path)", sizes, MaxPayload+Overhead)
	}
	if !slices.Contains(sizes, transport.MaxDatagram+Overhead) {
		t.Errorf("wire sizes %v; want a %d-byte record for a link frame", sizes, transport.MaxDatagram+Overhead)
	}
	if m := slices.Max(sizes); m > 1452 {
		t.Errorf("a datagram of %d bytes left the transport; the path carries 1452", m)
	}
	tooBig := make([]byte, MaxPayload+1)
	if err := a.tr.WriteBatch([]transport.Packet{{Addr: nat.addr(), Buf: tooBig, N: len(tooBig)}}); err == nil {
		t.Errorf("WriteBatch of %d bytes succeeded; want it refused", len(tooBig))
	}
}

func TestNATRebinding(t *testing.T) {
	b := newPeer(t, "", nil)
	nat := newNATBox(t, b.addr)
	a := newPeer(t, "", nil)

	a.send(t, nat.addr(), []byte("before"))
	oldAddr := b.expect(t, "before")
	b.send(t, oldAddr, []byte("reply"))
	a.expect(t, "reply")

	newAddr := nat.rebind()
	a.send(t, nat.addr(), []byte("after"))
	if from := b.expect(t, "after"); from != newAddr {
		t.Fatalf("after rebinding b sees the datagram from %v; want %v", from, newAddr)
	}
	// b still writes to the address it knew, and to the new one.
	b.send(t, oldAddr, []byte("to old"))
	a.expect(t, "to old")
	b.send(t, newAddr, []byte("to new"))
	a.expect(t, "to new")
	st := b.stats()
	if st.Handshakes != 1 || st.Migrations != 1 {
		t.Errorf("b stats %+v; want 1 handshake and 1 migration (the session survived)", st)
	}
}

func TestReplayDoesNotMigrate(t *testing.T) {
	b := newPeer(t, "", nil)
	nat := newNATBox(t, b.addr)
	a := newPeer(t, "", nil)
	a.send(t, nat.addr(), []byte("one"))
	b.expect(t, "one")
	a.send(t, nat.addr(), []byte("two"))
	b.expect(t, "two")
	rec := nat.lastPayload() // the record carrying "two", as on the wire

	// An attacker replays it from an address of its own: it decrypts
	// under the session's key, but it is old, so the session stays put.
	spy, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer spy.Close()
	if _, err := spy.WriteToUDPAddrPort(rec, b.addr); err != nil {
		t.Fatal(err)
	}
	b.nothing(t, 200*time.Millisecond)
	if st := b.stats(); st.Migrations != 0 {
		t.Errorf("a replayed record moved the session: stats %+v", st)
	}
	a.send(t, nat.addr(), []byte("three"))
	b.expect(t, "three")
}

func TestSimultaneousOpen(t *testing.T) {
	for i := range 5 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			a, b := newPeer(t, "", nil), newPeer(t, "", nil)
			done := make(chan struct{})
			go func() { defer close(done); a.send(t, b.addr, []byte("from a")) }()
			b.send(t, a.addr, []byte("from b"))
			<-done
			b.expect(t, "from a")
			a.expect(t, "from b")
			a.send(t, b.addr, []byte("again a"))
			b.send(t, a.addr, []byte("again b"))
			b.expect(t, "again a")
			a.expect(t, "again b")
		})
	}
}

func TestPeerRestart(t *testing.T) {
	a := newPeer(t, "", nil)
	b := newPeer(t, "", nil)
	a.send(t, b.addr, []byte("one"))
	b.expect(t, "one")
	b.send(t, a.addr, []byte("two"))
	a.expect(t, "two")

	// b loses its state without a goodbye: a new b on the same port.
	b.tr.(*dtlsTransport).detachAll()
	b.close()
	b2 := newPeer(t, b.addr.String(), nil)
	b2.send(t, a.addr, []byte("three"))
	a.expect(t, "three")
	a.send(t, b2.addr, []byte("four"))
	b2.expect(t, "four")
}

func TestHelloVerifyCookie(t *testing.T) {
	// Capture a real first ClientHello.
	fake, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	a := newPeer(t, "", nil)
	a.send(t, fake.LocalAddr().(*net.UDPAddr).AddrPort(), []byte("x"))
	hello := make([]byte, 2048)
	fake.SetReadDeadline(time.Now().Add(wait))
	n, _, err := fake.ReadFromUDPAddrPort(hello)
	if err != nil {
		t.Fatal(err)
	}
	hello = hello[:n]
	if _, ok := clientHelloRandom(hello); !ok {
		t.Fatalf("captured %d bytes that are not a ClientHello", n)
	}

	// Replay it to a server as a spoofer would: the answer is a small
	// HelloVerifyRequest, not the certificate flight.
	b := newPeer(t, "", nil)
	if _, err := fake.WriteToUDPAddrPort(hello, b.addr); err != nil {
		t.Fatal(err)
	}
	reply := make([]byte, 2048)
	fake.SetReadDeadline(time.Now().Add(wait))
	n, _, err = fake.ReadFromUDPAddrPort(reply)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := parseRecord(reply[:n])
	const helloVerifyRequest = 3
	if !ok || r.contentType != contentHandshake || reply[recordHeaderLen] != helloVerifyRequest {
		t.Fatalf("reply to a cookieless ClientHello: %d bytes, type %d/%d; want a HelloVerifyRequest", n, reply[0], reply[recordHeaderLen])
	}
	if n > len(hello) {
		t.Errorf("HelloVerifyRequest of %d bytes is larger than the %d-byte ClientHello (amplification)", n, len(hello))
	}
}

func TestMaxHandshakes(t *testing.T) {
	tr, err := New(map[string]string{"max_handshakes": "2"})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	addr, err := tr.Listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	// Capture a ClientHello, then flood from several source ports.
	fake, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	a := newPeer(t, "", nil)
	a.send(t, fake.LocalAddr().(*net.UDPAddr).AddrPort(), []byte("x"))
	hello := make([]byte, 2048)
	fake.SetReadDeadline(time.Now().Add(wait))
	n, _, err := fake.ReadFromUDPAddrPort(hello)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		s, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := s.WriteToUDPAddrPort(hello[:n], addr); err != nil {
			t.Fatal(err)
		}
	}
	dt := tr.(*dtlsTransport)
	deadline := time.Now().Add(wait)
	for dt.Stats().InputDrops < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if st := dt.Stats(); st.InputDrops < 3 {
		t.Errorf("stats %+v: want 3 of 5 ClientHellos refused with max_handshakes=2", st)
	}
}

// detachAll makes the transport forget its sessions without telling the
// peers, as a crash would.
func (t *dtlsTransport) detachAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.sessions {
		s.detached.Store(true)
	}
}

// TestSendFollowsLostSimultaneousOpen pins the race behind a lost first
// datagram: WriteBatch looks the session up, and before it queues, a
// ClientHello from the peer makes that session lose the simultaneous open
// and hand its queue to a new server-side session. The datagram must
// follow the queue, not stay behind in the abandoned session (TestSimultaneousOpen
// lost "from b" that way about once in a hundred runs under load).
func TestSendFollowsLostSimultaneousOpen(t *testing.T) {
	p := newPeer(t, "", nil)
	tr := p.tr.(*dtlsTransport)
	peer := netip.MustParseAddrPort("127.0.0.1:9") // discard: nothing answers
	s, err := tr.sessionFor(peer)                  // what WriteBatch holds
	if err != nil {
		t.Fatal(err)
	}
	var ours, theirs [32]byte
	for i := range ours {
		ours[i] = 0xff // ours is the higher random: we yield
	}
	s.ourHello.Store(&ours)
	tr.mu.Lock()
	tr.helloAtKnown(s, peer, theirs, []byte("a ClientHello")) // unlocks tr.mu
	tr.mu.Lock()
	ns := tr.sessions[peer]
	tr.mu.Unlock()
	if ns == s || ns == nil || ns.client {
		t.Fatalf("the session did not yield to a server-side one: %+v", ns)
	}
	before := tr.Stats().SendDrops
	s.send([]byte("late"))
	s.mu.Lock()
	left := len(s.queue)
	s.mu.Unlock()
	ns.mu.Lock()
	moved := len(ns.queue)
	ns.mu.Unlock()
	if left != 0 {
		t.Fatalf("the datagram stayed in the abandoned session (queue %d)", left)
	}
	if moved != 1 && tr.Stats().SendDrops == before {
		t.Fatalf("the datagram reached neither the new session's queue (%d) nor the drop count", moved)
	}
}

// TestSpoofedRecordCannotStopMigration spoofs, from the peer's address, an
// application record numbered 2⁴⁸−1 that no key opens. Before the fix it
// raised the session's highest-seen number, and the genuine records from
// the peer's next address were then taken for replays.
func TestSpoofedRecordCannotStopMigration(t *testing.T) {
	b := newPeer(t, "", nil)
	nat := newNATBox(t, b.addr)
	a := newPeer(t, "", nil)
	a.send(t, nat.addr(), []byte("before"))
	oldAddr := b.expect(t, "before")

	spoof := make([]byte, recordHeaderLen+8+16+4)
	spoof[0], spoof[1], spoof[2], spoof[4] = contentApplicationData, 0xfe, 0xfd, 1
	for i := 5; i < 11; i++ {
		spoof[i] = 0xff
	}
	spoof[12] = byte(len(spoof) - recordHeaderLen)
	b.tr.(*dtlsTransport).route(oldAddr, spoof)

	newAddr := nat.rebind()
	a.send(t, nat.addr(), []byte("after"))
	if from := b.expect(t, "after"); from != newAddr {
		t.Fatalf("after rebinding b sees the datagram from %v; want %v", from, newAddr)
	}
	if st := b.stats(); st.Migrations != 1 {
		t.Errorf("b stats %+v; want 1 migration", st)
	}
}
