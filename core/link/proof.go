package link

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/identity"
)

// NonceSize is the size of a reachability nonce.
const NonceSize = 32

// proofContext separates proof signatures from descriptor signatures.
const proofContext = "tarzan-proof-v1"

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
// over "tarzan-proof-v1" || nonce || responder node ID, zero-padded.
func EncodeProof(nonce [32]byte, responderDescriptor []byte, id *identity.Identity) ([]byte, error) {
	if len(responderDescriptor) == 0 || len(responderDescriptor) > descriptor.MaxSize {
		return nil, fmt.Errorf("link: proof descriptor is %d bytes, want 1..%d", len(responderDescriptor), descriptor.MaxSize)
	}
	f := newFrame(TypeProof, 0)
	b := f[HeaderSize:HeaderSize]
	b = append(b, nonce[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(responderDescriptor)))
	b = append(b, responderDescriptor...)
	_ = append(b, id.Sign(proofMessage(nonce, id.ID()))...)
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

// VerifyProof checks sig proves that d's identity key answered nonce.
// The caller must also check that nonce is the one it sent to an address
// listed in d.
func VerifyProof(nonce [32]byte, d *descriptor.Descriptor, sig []byte) error {
	if d == nil || len(d.Identity) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: proof signature or identity key has the wrong size", ErrAuth)
	}
	if !ed25519.Verify(d.Identity, proofMessage(nonce, d.ID()), sig) {
		return fmt.Errorf("%w: proof not signed by node %s", ErrAuth, d.ID().Short())
	}
	return nil
}

func proofMessage(nonce [32]byte, id identity.ID) []byte {
	m := make([]byte, 0, len(proofContext)+NonceSize+len(id))
	m = append(m, proofContext...)
	m = append(m, nonce[:]...)
	return append(m, id[:]...)
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
