package link

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/identity"
)

func TestProbeProofRoundTrip(t *testing.T) {
	prober, responder := newPeer(t, 1), newPeer(t, 2)
	var nonce [32]byte
	newDetRand("nonce").Read(nonce[:])
	pd, rd := testDescriptor(t, prober), testDescriptor(t, responder)

	probe, err := EncodeProbe(nonce, pd)
	if err != nil {
		t.Fatal(err)
	}
	gotNonce, gotPD, err := DecodeProbe(probe)
	if err != nil || gotNonce != nonce || !bytes.Equal(gotPD, pd) {
		t.Fatalf("probe round trip: %v", err)
	}
	proof, err := EncodeProof(gotNonce, prober.id.ID(), rd, responder.id)
	if err != nil {
		t.Fatal(err)
	}
	n2, gotRD, sig, err := DecodeProof(proof)
	if err != nil || n2 != nonce || !bytes.Equal(gotRD, rd) || len(sig) != 64 {
		t.Fatalf("proof round trip: %v", err)
	}
	d, err := descriptor.Parse(gotRD, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyProof(nonce, prober.id.ID(), d, sig); err != nil {
		t.Fatal(err)
	}
	for _, f := range [][]byte{probe, proof} {
		if typ, ri, err := Header(f); err != nil || ri != 0 || (typ != TypeProbe && typ != TypeProof) {
			t.Fatalf("header %d %d %v", typ, ri, err)
		}
	}

	// Rejections.
	other := newPeer(t, 3)
	otherNonce := nonce
	otherNonce[0] ^= 1
	badSig := bytes.Clone(sig)
	badSig[10] ^= 1
	// A proof signed by another node around the responder's descriptor.
	forged, _ := EncodeProof(nonce, prober.id.ID(), rd, other.id)
	_, _, forgedSig, _ := DecodeProof(forged)
	tests := []struct {
		name   string
		nonce  [32]byte
		prober identity.ID
		sig    []byte
	}{
		{"other nonce", otherNonce, prober.id.ID(), sig},
		{"other prober", nonce, other.id.ID(), sig},
		{"flipped signature", nonce, prober.id.ID(), badSig},
		{"signed by another identity", nonce, prober.id.ID(), forgedSig},
		{"short signature", nonce, prober.id.ID(), sig[:63]},
		{"no signature", nonce, prober.id.ID(), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := VerifyProof(tc.nonce, tc.prober, d, tc.sig); !errors.Is(err, ErrAuth) {
				t.Fatalf("err = %v, want ErrAuth", err)
			}
		})
	}
	if err := VerifyProof(nonce, prober.id.ID(), &descriptor.Descriptor{}, sig); !errors.Is(err, ErrAuth) {
		t.Fatalf("empty descriptor: %v", err)
	}
}

// TestProofBindsDescriptor: a responder's signature vouches for the exact
// descriptor it was made over. Moved onto another descriptor of the same
// node (older, or listing another address), it does not verify.
func TestProofBindsDescriptor(t *testing.T) {
	prober, responder := newPeer(t, 1), newPeer(t, 2)
	nonce := [32]byte{7}
	cur := testDescriptor(t, responder)
	proof, err := EncodeProof(nonce, prober.id.ID(), cur, responder.id)
	if err != nil {
		t.Fatal(err)
	}
	_, _, sig, _ := DecodeProof(proof)
	var onion [32]byte
	onion[0] = 1
	older := &descriptor.Descriptor{
		LinkKey: responder.static.Public, OnionKey: onion,
		Addrs:     []descriptor.Addr{{Transport: "udp", AddrPort: netip.MustParseAddrPort("127.250.0.1:7070")}},
		Published: t0.Add(-time.Hour), Expires: t0.Add(time.Hour),
	}
	ob, err := older.Sign(responder.id)
	if err != nil {
		t.Fatal(err)
	}
	od, err := descriptor.Parse(ob, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyProof(nonce, prober.id.ID(), od, sig); !errors.Is(err, ErrAuth) {
		t.Fatalf("signature moved onto another descriptor of the responder: %v, want ErrAuth", err)
	}
	cd, _ := descriptor.Parse(cur, t0)
	if err := VerifyProof(nonce, prober.id.ID(), cd, sig); err != nil {
		t.Fatalf("on its own descriptor: %v", err)
	}
}

// TestNewIndex: indices are non-zero and read from the given source.
func TestNewIndex(t *testing.T) {
	zeros := bytes.NewReader(append(make([]byte, 8), 0, 0, 0, 5))
	idx, err := NewIndex(zeros)
	if err != nil || idx != 5 {
		t.Fatalf("NewIndex skipping zeros = %d, %v; want 5", idx, err)
	}
	if _, err := NewIndex(bytes.NewReader(nil)); err == nil {
		t.Fatal("NewIndex from an empty source succeeded")
	}
}

func TestReachDecodeRejects(t *testing.T) {
	p := newPeer(t, 1)
	desc := testDescriptor(t, p)
	probe, _ := EncodeProbe([32]byte{1}, desc)
	proof, _ := EncodeProof([32]byte{1}, identity.ID{9}, desc, p.id)
	mod := func(f []byte, fn func([]byte)) []byte {
		f = bytes.Clone(f)
		fn(f)
		return f
	}
	setLen := func(n int) func([]byte) {
		return func(f []byte) { binary.BigEndian.PutUint16(f[HeaderSize+NonceSize:], uint16(n)) }
	}
	tests := []struct {
		name   string
		frame  []byte
		decode func([]byte) error
	}{
		{"probe: zero length", mod(probe, setLen(0)), decProbe},
		{"probe: length over MaxSize", mod(probe, setLen(descriptor.MaxSize+1)), decProbe},
		{"probe: length cuts descriptor (padding non-zero)", mod(probe, setLen(len(desc)-1)), decProbe},
		{"probe: padding", mod(probe, func(f []byte) { f[FrameSize-1] = 1 }), decProbe},
		{"probe: counter", mod(probe, func(f []byte) { f[15] = 1 }), decProbe},
		{"probe: receiver index", mod(probe, func(f []byte) { f[7] = 1 }), decProbe},
		{"probe: as proof", probe, decProof},
		{"probe: short", probe[:FrameSize-1], decProbe},
		{"proof: length cuts signature (padding non-zero)", mod(proof, setLen(len(desc)-1)), decProof},
		{"proof: padding", mod(proof, func(f []byte) { f[FrameSize-1] = 1 }), decProof},
		{"proof: as probe", proof, decProbe},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.decode(tc.frame); !errors.Is(err, ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
		})
	}
	if _, err := EncodeProbe([32]byte{}, make([]byte, descriptor.MaxSize+1)); err == nil {
		t.Fatal("oversized descriptor encoded")
	}
	if _, err := EncodeProof([32]byte{}, identity.ID{9}, nil, p.id); err == nil {
		t.Fatal("empty descriptor encoded")
	}
	// The largest descriptor fits a proof frame.
	if _, err := EncodeProof([32]byte{}, identity.ID{9}, make([]byte, descriptor.MaxSize), p.id); err != nil {
		t.Fatal(err)
	}
}

func decProbe(f []byte) error { _, _, err := DecodeProbe(f); return err }
func decProof(f []byte) error { _, _, _, err := DecodeProof(f); return err }

func TestHeader(t *testing.T) {
	good := make([]byte, FrameSize)
	putHeader(good, TypeData, 0xdeadbeef, 42)
	typ, ri, err := Header(good)
	if err != nil || typ != TypeData || ri != 0xdeadbeef {
		t.Fatalf("Header = %d %x %v", typ, ri, err)
	}
	mod := func(fn func([]byte)) []byte { f := bytes.Clone(good); fn(f); return f }
	for name, f := range map[string][]byte{
		"empty":      nil,
		"short":      good[:FrameSize-1],
		"long":       append(bytes.Clone(good), 0),
		"type 0":     mod(func(f []byte) { f[0] = 0 }),
		"type 7":     mod(func(f []byte) { f[0] = 7 }),
		"type 255":   mod(func(f []byte) { f[0] = 255 }),
		"reserved 1": mod(func(f []byte) { f[1] = 1 }),
		"reserved 3": mod(func(f []byte) { f[3] = 0x80 }),
	} {
		if _, _, err := Header(f); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
}

// TestEveryFrameIsFrameSize: all frame kinds have exactly one size on the
// wire.
func TestEveryFrameIsFrameSize(t *testing.T) {
	a, b := newPeer(t, 1), newPeer(t, 2)
	rand := newDetRand("sizes")
	h, initFrame, err := Initiate(a.static, a.id.ID(), b.static.Public, 1, rand, t0)
	if err != nil {
		t.Fatal(err)
	}
	rb, resp, _, _, err := Respond(b.static, initFrame, 2, rand, t0, admit(a, [12]byte{}))
	if err != nil {
		t.Fatal(err)
	}
	ia, err := h.Finish(resp, t0)
	if err != nil {
		t.Fatal(err)
	}
	ia.SetClock(func() time.Time { return t0 })
	rb.SetClock(func() time.Time { return t0 })
	d1, _ := ia.Seal(nil, payload(0))
	d2, _ := rb.Seal(make([]byte, 10), payload(1)) // small dst grows
	d3, _ := rb.Seal(make([]byte, 0, 4096), payload(2))
	probe, _ := EncodeProbe([32]byte{}, testDescriptor(t, a))
	proof, _ := EncodeProof([32]byte{}, a.id.ID(), testDescriptor(t, b), b.id)
	for name, f := range map[string][]byte{"init": initFrame, "resp": resp, "data": d1, "data small dst": d2, "data big dst": d3, "probe": probe, "proof": proof} {
		if len(f) != FrameSize {
			t.Errorf("%s frame is %d bytes, want %d", name, len(f), FrameSize)
		}
	}
}
