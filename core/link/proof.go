package link

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/identity"
)

// NonceSize is the size of a reachability nonce.
const NonceSize = 32

// proofContext separates proof signatures from descriptor signatures (and
// from version 1's proofs, which bound neither prober nor descriptor).
const proofContext = "tarzan-proof-v2"

// EncodeProbe builds a TypeProbe frame: nonce(32) || length(2) || the
// prober's signed descriptor, zero-padded.
func EncodeProbe(nonce [32]byte, proberDescriptor []byte) ([]byte, error) {
	if len(proberDescriptor) == 0 || len(proberDescriptor) > descriptor.MaxSize {
		return nil, fmt.Errorf("link: probe descriptor is %d bytes, want 1..%d", len(proberDescriptor), descriptor.MaxSize)
	}
	f := newFrame(TypeProbe, 0)
	b := f[HeaderSize:HeaderSize]
	b = append(b, nonce[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(proberDescriptor)))
	_ = append(b, proberDescriptor...)
	return f, nil
}

// DecodeProbe parses a TypeProbe frame. The descriptor is returned
// unverified (the caller parses it) and does not alias frame.
func DecodeProbe(frame []byte) (nonce [32]byte, proberDescriptor []byte, err error) {
	nonce, d, _, err := decodeReach(frame, TypeProbe, 0)
	if err != nil {
		return [32]byte{}, nil, err
	}
	return nonce, d, nil
}

// EncodeProof builds a TypeProof frame answering nonce: nonce(32) ||
// length(2) || the responder's signed descriptor || Ed25519 signature(64)
// over "tarzan-proof-v2" || nonce || prober node ID || responder node ID ||
// SHA-256(the responder's descriptor, exactly as carried), zero-padded.
//
// Binding the prober means a proof answers one node's probe only: an
// attacker who forwards the nonce it was sent, in a probe of its own, gets
// a proof made out to itself, useless to the node that probed it. Binding
// the descriptor means the signature vouches for that descriptor only: it
// cannot be moved onto another one the responder once signed (an older
// one, or one listing an address the attacker now holds).
func EncodeProof(nonce [32]byte, prober identity.ID, responderDescriptor []byte, id *identity.Identity) ([]byte, error) {
	if len(responderDescriptor) == 0 || len(responderDescriptor) > descriptor.MaxSize {
		return nil, fmt.Errorf("link: proof descriptor is %d bytes, want 1..%d", len(responderDescriptor), descriptor.MaxSize)
	}
	f := newFrame(TypeProof, 0)
	b := f[HeaderSize:HeaderSize]
	b = append(b, nonce[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(responderDescriptor)))
	b = append(b, responderDescriptor...)
	_ = append(b, id.Sign(proofMessage(nonce, prober, id.ID(), responderDescriptor))...)
	return f, nil
}

// DecodeProof parses a TypeProof frame. Neither the descriptor nor the
// signature is verified here: parse the descriptor, check it is the peer
// probed, then call VerifyProof. Results do not alias frame.
func DecodeProof(frame []byte) (nonce [32]byte, responderDescriptor []byte, sig []byte, err error) {
	nonce, d, sig, err := decodeReach(frame, TypeProof, ed25519.SignatureSize)
	if err != nil {
		return [32]byte{}, nil, nil, err
	}
	return nonce, d, sig, nil
}

// VerifyProof checks that sig is d's identity key answering nonce, sent by
// prober (the verifier's own node ID), for exactly the descriptor d was
// parsed from. The caller must also check that nonce is the one it sent to
// an address listed in d, and that the proof came from that address.
func VerifyProof(nonce [32]byte, prober identity.ID, d *descriptor.Descriptor, sig []byte) error {
	if d == nil || len(d.Identity) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize || len(d.Encoded()) == 0 {
		return fmt.Errorf("%w: proof signature, identity key or descriptor encoding missing or the wrong size", ErrAuth)
	}
	if !ed25519.Verify(d.Identity, proofMessage(nonce, prober, d.ID(), d.Encoded()), sig) {
		return fmt.Errorf("%w: proof not signed by node %s for prober %s and this descriptor", ErrAuth, d.ID().Short(), prober.Short())
	}
	return nil
}

func proofMessage(nonce [32]byte, prober, responder identity.ID, responderDescriptor []byte) []byte {
	h := sha256.Sum256(responderDescriptor)
	m := make([]byte, 0, len(proofContext)+NonceSize+2*len(prober)+len(h))
	m = append(m, proofContext...)
	m = append(m, nonce[:]...)
	m = append(m, prober[:]...)
	m = append(m, responder[:]...)
	return append(m, h[:]...)
}

// decodeReach parses nonce || length || descriptor || trailer(trailerLen)
// and checks header and padding.
func decodeReach(frame []byte, typ byte, trailerLen int) (nonce [32]byte, desc, trailer []byte, err error) {
	t, ri, err := Header(frame)
	if err != nil {
		return nonce, nil, nil, err
	}
	if t != typ || ri != 0 {
		return nonce, nil, nil, fmt.Errorf("%w: type %d index %d, want type %d index 0", ErrMalformed, t, ri, typ)
	}
	body := frame[HeaderSize:]
	n := int(binary.BigEndian.Uint16(body[NonceSize:]))
	if n == 0 || n > descriptor.MaxSize {
		return nonce, nil, nil, fmt.Errorf("%w: descriptor length %d, want 1..%d", ErrMalformed, n, descriptor.MaxSize)
	}
	used := NonceSize + 2 + n + trailerLen
	if err := checkControl(frame, typ, used); err != nil {
		return nonce, nil, nil, err
	}
	nonce = [32]byte(body[:NonceSize])
	desc = bytes.Clone(body[NonceSize+2 : NonceSize+2+n])
	if trailerLen > 0 {
		trailer = bytes.Clone(body[NonceSize+2+n : used])
	}
	return nonce, desc, trailer, nil
}
