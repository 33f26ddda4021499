package link

import (
	"testing"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/identity"
)

// Fuzz inputs are tried as given and also fitted to FrameSize (cut or
// zero-padded), so the mutator reaches the body checks instead of stopping
// at the length check.
func fitted(b []byte) []byte {
	f := make([]byte, FrameSize)
	copy(f, b)
	return f
}

func FuzzHeader(f *testing.F) {
	a, b := newPeer(f, 1), newPeer(f, 2)
	ia, _ := pair(f, a, b, t0, newDetRand("fuzz"))
	d, _ := ia.Seal(nil, payload(1))
	f.Add(d)
	f.Add(d[:20])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, frame []byte) {
		typ, _, err := Header(frame)
		if err == nil && (len(frame) != FrameSize || typ < TypeHandshakeInit || typ > TypeGossip) {
			t.Fatalf("accepted type %d length %d", typ, len(frame))
		}
	})
}

func FuzzOpen(f *testing.F) {
	a, b := newPeer(f, 1), newPeer(f, 2)
	ia, rb := pair(f, a, b, t0, newDetRand("fuzz-open"))
	for i := 0; i < 3; i++ {
		d, _ := ia.Seal(nil, payload(byte(i)))
		f.Add(d)
	}
	f.Add(make([]byte, FrameSize))
	out := make([]byte, PayloadSize)
	f.Fuzz(func(t *testing.T, frame []byte) {
		for _, fr := range [][]byte{frame, fitted(frame)} {
			if p, err := rb.Open(out, fr); err == nil && len(p) != PayloadSize {
				t.Fatalf("opened %d bytes", len(p))
			}
		}
	})
}

func FuzzRespond(f *testing.F) {
	a, b := newPeer(f, 1), newPeer(f, 2)
	rand := newDetRand("fuzz-respond")
	_, init, err := Initiate(a.static, a.id.ID(), b.static.Public, 5, rand, t0)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(init)
	f.Add(init[:HeaderSize+initMsgSize])
	f.Fuzz(func(t *testing.T, frame []byte) {
		for _, fr := range [][]byte{frame, fitted(frame)} {
			s, resp, _, _, err := Respond(b.static, fr, 6, rand, t0, admit(a, [12]byte{}))
			if err == nil && (s == nil || len(resp) != FrameSize) {
				t.Fatal("success without session or full-size response")
			}
		}
	})
}

func FuzzDecodeProbe(f *testing.F) {
	p := newPeer(f, 1)
	probe, _ := EncodeProbe([32]byte{1, 2, 3}, testDescriptor(f, p))
	f.Add(probe)
	f.Add(probe[:100])
	f.Fuzz(func(t *testing.T, frame []byte) {
		for _, fr := range [][]byte{frame, fitted(frame)} {
			_, d, err := DecodeProbe(fr)
			if err != nil {
				continue
			}
			if len(d) == 0 || len(d) > descriptor.MaxSize {
				t.Fatalf("descriptor of %d bytes accepted", len(d))
			}
			descriptor.Parse(d, t0)
		}
	})
}

func FuzzDecodeProof(f *testing.F) {
	p := newPeer(f, 1)
	proof, _ := EncodeProof([32]byte{1, 2, 3}, identity.ID{4}, testDescriptor(f, p), p.id)
	f.Add(proof)
	f.Add(proof[:100])
	f.Fuzz(func(t *testing.T, frame []byte) {
		for _, fr := range [][]byte{frame, fitted(frame)} {
			nonce, db, sig, err := DecodeProof(fr)
			if err != nil {
				continue
			}
			if len(sig) != 64 {
				t.Fatalf("signature of %d bytes accepted", len(sig))
			}
			if d, err := descriptor.Parse(db, t0); err == nil {
				VerifyProof(nonce, identity.ID{4}, d, sig)
			}
		}
	})
}
