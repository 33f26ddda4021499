package link

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/identity"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// detRand is a deterministic randomness stream (ChaCha20 keystream of a
// label) so handshakes and vectors are reproducible.
type detRand struct{ c *chacha20.Cipher }

func newDetRand(label string) *detRand {
	var key [32]byte
	copy(key[:], label)
	c, err := chacha20.NewUnauthenticatedCipher(key[:], make([]byte, 12))
	if err != nil {
		panic(err)
	}
	return &detRand{c}
}

func (r *detRand) Read(p []byte) (int, error) {
	clear(p)
	r.c.XORKeyStream(p, p)
	return len(p), nil
}

type peer struct {
	id     *identity.Identity
	static Static
}

func newPeer(t testing.TB, b byte) peer {
	t.Helper()
	id, err := identity.FromSeed(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	st, err := StaticFromPrivate([32]byte(bytes.Repeat([]byte{b + 0x10}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return peer{id, st}
}

// admit is a lookup that knows exactly one peer.
func admit(p peer, last [12]byte) func(identity.ID) ([32]byte, [12]byte, Flags, error) {
	return admitFlags(p, last, 0)
}

// admitFlags is admit with the flags the response is to carry.
func admitFlags(p peer, last [12]byte, flags Flags) func(identity.ID) ([32]byte, [12]byte, Flags, error) {
	return func(id identity.ID) ([32]byte, [12]byte, Flags, error) {
		if id != p.id.ID() {
			return [32]byte{}, [12]byte{}, 0, errNotMimic
		}
		return p.static.Public, last, flags, nil
	}
}

type testErr string

func (e testErr) Error() string { return string(e) }

const errNotMimic = testErr("not a mimic")

// pair runs a full handshake a → b at now and returns both sessions, with
// clocks pinned to now.
func pair(t testing.TB, a, b peer, now time.Time, rand *detRand) (ia, rb *Session) {
	t.Helper()
	h, initFrame, err := Initiate(a.static, a.id.ID(), b.static.Public, 0x0a0a0a0a, rand, now)
	if err != nil {
		t.Fatal(err)
	}
	h.SetRemote(b.id.ID())
	rb, resp, remote, _, err := Respond(b.static, initFrame, 0x0b0b0b0b, rand, now, admit(a, [12]byte{}))
	if err != nil {
		t.Fatal(err)
	}
	if remote != a.id.ID() {
		t.Fatalf("responder sees %s, want %s", remote.Short(), a.id.ID().Short())
	}
	ia, err = h.Finish(resp, now)
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return now }
	ia.SetClock(clock)
	rb.SetClock(clock)
	return ia, rb
}

func payload(b byte) []byte { return bytes.Repeat([]byte{b}, PayloadSize) }

func testDescriptor(t testing.TB, p peer) []byte {
	t.Helper()
	var onion [32]byte
	for i := range onion {
		onion[i] = byte(0x80 + i)
	}
	d := &descriptor.Descriptor{
		LinkKey:   p.static.Public,
		OnionKey:  onion,
		Addrs:     []descriptor.Addr{{Transport: "udp", AddrPort: netip.MustParseAddrPort("127.1.0.1:7070")}},
		Published: t0,
		Expires:   t0.Add(24 * time.Hour),
	}
	b, err := d.Sign(p.id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
