package descriptor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

func testIdentity(t testing.TB, b byte) *identity.Identity {
	t.Helper()
	id, err := identity.FromSeed(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func sample() *Descriptor {
	var lk, ok [32]byte
	for i := range lk {
		lk[i] = byte(0x40 + i)
		ok[i] = byte(0x80 + i)
	}
	return &Descriptor{
		LinkKey:  lk,
		OnionKey: ok,
		Addrs: []Addr{
			{Transport: "udp", AddrPort: netip.MustParseAddrPort("127.1.0.1:7070")},
			{Transport: "kcp", AddrPort: netip.MustParseAddrPort("[2001:db8::1]:7071")},
		},
		Exit:       true,
		ExitPolicy: "accept *:80,443; reject private",
		Published:  t0,
		Expires:    t0.Add(24 * time.Hour),
	}
}

func signed(t testing.TB, d *Descriptor, id *identity.Identity) []byte {
	t.Helper()
	b, err := d.Sign(id)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	id := testIdentity(t, 1)
	d := sample()
	d.Published = t0.Add(123 * time.Millisecond) // truncated to seconds by Sign
	b := signed(t, d, id)
	if len(b) > MaxSize {
		t.Fatalf("encoded %d bytes", len(b))
	}
	if !bytes.Equal(d.Encoded(), b) {
		t.Fatal("Encoded() != Sign result")
	}
	got, err := Parse(b, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID() != id.ID() || !got.Identity.Equal(id.Public()) {
		t.Fatal("identity lost")
	}
	if got.LinkKey != d.LinkKey || got.OnionKey != d.OnionKey || got.Exit != d.Exit || got.ExitPolicy != d.ExitPolicy {
		t.Fatalf("fields differ: %+v vs %+v", got, d)
	}
	if !got.Published.Equal(t0) || !got.Expires.Equal(d.Expires) {
		t.Fatalf("times: %v %v", got.Published, got.Expires)
	}
	if len(got.Addrs) != 2 || got.Addrs[0] != d.Addrs[0] || got.Addrs[1] != d.Addrs[1] {
		t.Fatalf("addrs: %v", got.Addrs)
	}
	if !bytes.Equal(got.Encoded(), b) {
		t.Fatal("parsed Encoded() differs")
	}
	// Parse must not alias its input.
	mut := bytes.Clone(b)
	in := bytes.Clone(b)
	got2, _ := Parse(in, t0)
	in[len(in)-1] ^= 1
	if !bytes.Equal(got2.Encoded(), mut) {
		t.Fatal("Parse aliases its input")
	}
	// Re-signing a parsed descriptor gives the same bytes (Ed25519 is
	// deterministic and the encoding canonical).
	again := signed(t, got, id)
	if !bytes.Equal(again, d.Encoded()) {
		t.Fatal("re-signing a parsed descriptor changed its encoding")
	}
}

func TestParseRejects(t *testing.T) {
	id := testIdentity(t, 1)
	good := signed(t, sample(), id)
	forged := func() []byte {
		// Signed by key 2, but claims key 1's identity.
		d := sample()
		b := signed(t, d, testIdentity(t, 2))
		b = bytes.Clone(b)
		copy(b[1+tlvHeader:], id.Public())
		return b
	}()
	tampered := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		return b
	}
	tests := []struct {
		name string
		in   []byte
		now  time.Time
		want error
	}{
		{"tampered key byte", tampered(40), t0, ErrBadSignature},
		{"tampered last policy byte", tampered(bytes.Index(good, []byte("private")) + 1), t0, ErrBadSignature},
		{"tampered signature", tampered(len(good) - 5), t0, ErrBadSignature},
		{"forged identity", forged, t0, ErrBadSignature},
		{"expired", good, t0.Add(24*time.Hour + ClockSkew), ErrExpired},
		{"not yet valid", good, t0.Add(-ClockSkew - time.Second), ErrNotYetValid},
		{"too large", append(bytes.Clone(good), make([]byte, MaxSize)...), t0, ErrTooLarge},
		{"trailing byte", append(bytes.Clone(good), 0), t0, ErrMalformed},
		{"empty", nil, t0, ErrMalformed},
		{"bad version", append([]byte{2}, good[1:]...), t0, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.in, tc.now)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestClockSkewAccepted(t *testing.T) {
	good := signed(t, sample(), testIdentity(t, 1))
	for _, now := range []time.Time{t0.Add(-ClockSkew + time.Second), t0.Add(24*time.Hour + ClockSkew - time.Second)} {
		if _, err := Parse(good, now); err != nil {
			t.Errorf("now=%v: %v", now, err)
		}
	}
}

func TestTruncated(t *testing.T) {
	good := signed(t, sample(), testIdentity(t, 1))
	for n := 0; n < len(good); n++ {
		if _, err := Parse(good[:n], t0); !errors.Is(err, ErrMalformed) {
			t.Fatalf("Parse(good[:%d]) err = %v, want ErrMalformed", n, err)
		}
	}
}

// rebuild re-signs a hand-assembled body so structural checks, not the
// signature, decide the outcome.
func rebuild(t *testing.T, id *identity.Identity, fields ...Field) []byte {
	b := []byte{Version}
	for _, f := range fields {
		b = appendTLV(b, f.Type, f.Value)
	}
	return appendTLV(b, typeSignature, id.Sign(signedMessage(b)))
}

// fieldsOf splits a good encoding into its fields (signature excluded).
func fieldsOf(b []byte) []Field {
	var fs []Field
	for off := 1; ; {
		t, n := b[off], int(binary.BigEndian.Uint16(b[off+1:]))
		if t == typeSignature {
			return fs
		}
		fs = append(fs, Field{t, b[off+3 : off+3+n]})
		off += 3 + n
	}
}

func TestStructureRejected(t *testing.T) {
	id := testIdentity(t, 1)
	fs := fieldsOf(signed(t, sample(), id))
	without := func(typ byte) []Field {
		var out []Field
		for _, f := range fs {
			if f.Type != typ {
				out = append(out, f)
			}
		}
		return out
	}
	dup := append(append([]Field{}, fs[:3]...), fs[2:]...)
	swapped := append([]Field{}, fs...)
	swapped[1], swapped[2] = swapped[2], swapped[1]
	withAt := func(i int, f Field) []Field {
		out := append([]Field{}, fs[:i]...)
		out = append(out, f)
		return append(out, fs[i+1:]...)
	}
	tests := []struct {
		name   string
		fields []Field
	}{
		{"missing identity", without(typeIdentity)},
		{"missing addrs", without(typeAddrs)},
		{"missing expires", without(typeExpires)},
		{"duplicate onion key", dup},
		{"out of order", swapped},
		{"type 0", append([]Field{{0, nil}}, fs...)},
		{"short link key", withAt(1, Field{typeLinkKey, make([]byte, 31)})},
		{"zero link key", withAt(1, Field{typeLinkKey, make([]byte, 32)})},
		{"empty addrs", withAt(3, Field{typeAddrs, nil})},
		{"bad family", withAt(3, Field{typeAddrs, []byte{3, 'u', 'd', 'p', 5, 1, 2, 3, 4, 0, 1}})},
		{"bad transport", withAt(3, Field{typeAddrs, []byte{3, 'U', 'D', 'P', 4, 1, 2, 3, 4, 0, 1}})},
		{"port 0", withAt(3, Field{typeAddrs, []byte{3, 'u', 'd', 'p', 4, 1, 2, 3, 4, 0, 0}})},
		{"long policy", withAt(5, Field{typeExitPolicy, bytes.Repeat([]byte{'a'}, MaxExitPolicy+1)})},
		{"expires before published", withAt(7, Field{typeExpires, binary.BigEndian.AppendUint64(nil, uint64(t0.Unix()-1))})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(rebuild(t, id, tc.fields...), t0)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestUnknownFieldPreserved(t *testing.T) {
	id := testIdentity(t, 1)
	d := sample()
	d.Unknown = []Field{{Type: 0x09, Value: []byte("future")}, {Type: 0x80, Value: nil}}
	b := signed(t, d, id)
	got, err := Parse(b, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Unknown) != 2 || got.Unknown[0].Type != 0x09 || string(got.Unknown[0].Value) != "future" || got.Unknown[1].Type != 0x80 {
		t.Fatalf("unknown fields: %+v", got.Unknown)
	}
	if got.ExitPolicy != d.ExitPolicy || len(got.Addrs) != 2 {
		t.Fatal("known fields disturbed by unknown ones")
	}
	// The unknown field is covered by the signature.
	i := bytes.Index(b, []byte("future"))
	tam := bytes.Clone(b)
	tam[i] ^= 1
	if _, err := Parse(tam, t0); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered unknown field: err = %v", err)
	}
	// Re-signing keeps it, byte for byte.
	if again := signed(t, got, id); !bytes.Equal(again, b) {
		t.Fatal("unknown field lost on re-sign")
	}
}

func TestSignRejects(t *testing.T) {
	id := testIdentity(t, 1)
	tests := []struct {
		name   string
		modify func(*Descriptor)
		want   error
	}{
		{"no addrs", func(d *Descriptor) { d.Addrs = nil }, ErrMalformed},
		{"zone", func(d *Descriptor) {
			d.Addrs[1].AddrPort = netip.MustParseAddrPort("[fe80::1%eth0]:1")
		}, ErrMalformed},
		{"4in6", func(d *Descriptor) {
			d.Addrs[0].AddrPort = netip.MustParseAddrPort("[::ffff:1.2.3.4]:1")
		}, ErrMalformed},
		{"policy too long", func(d *Descriptor) { d.ExitPolicy = strings.Repeat("x", MaxExitPolicy+1) }, ErrMalformed},
		{"expires before published", func(d *Descriptor) { d.Expires = d.Published }, ErrMalformed},
		{"unknown with known type", func(d *Descriptor) { d.Unknown = []Field{{Type: typeFlags}} }, ErrMalformed},
		{"unknown signature type", func(d *Descriptor) { d.Unknown = []Field{{Type: typeSignature}} }, ErrMalformed},
		{"unknown unsorted", func(d *Descriptor) { d.Unknown = []Field{{Type: 0x20}, {Type: 0x10}} }, ErrMalformed},
		{"too large", func(d *Descriptor) { d.Unknown = []Field{{Type: 0x20, Value: make([]byte, 800)}} }, ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := sample()
			tc.modify(d)
			if _, err := d.Sign(id); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

// TestMaxAddrsFits checks a descriptor at every field limit still fits
// MaxSize, so only unknown fields can push a descriptor over the limit.
func TestMaxAddrsFits(t *testing.T) {
	d := sample()
	d.ExitPolicy = strings.Repeat("p", MaxExitPolicy)
	d.Addrs = nil
	for i := 0; i < MaxAddrs; i++ {
		d.Addrs = append(d.Addrs, Addr{Transport: strings.Repeat("t", MaxTransportName), AddrPort: netip.AddrPortFrom(netip.MustParseAddr("2001:db8::1"), uint16(1000+i))})
	}
	b, err := d.Sign(testIdentity(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("largest descriptor without unknown fields: %d bytes", len(b))
}

func FuzzParseDescriptor(f *testing.F) {
	id := testIdentity(f, 1)
	f.Add(signed(f, sample(), id))
	d := sample()
	d.Unknown = []Field{{Type: 0x09, Value: []byte("future")}}
	f.Add(signed(f, d, id))
	f.Add([]byte{})
	f.Add([]byte{Version, typeSignature, 0, 64})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Parse(b, t0)
		if err != nil {
			return
		}
		if !bytes.Equal(d.Encoded(), b) {
			t.Fatal("Encoded() differs from accepted input")
		}
	})
}
