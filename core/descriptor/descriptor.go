// Package descriptor encodes, signs and verifies node descriptors: the
// signed, bounded record a node publishes about itself (PROTOCOL.md §2).
package descriptor

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
)

// MaxSize bounds an encoded descriptor, signature included, so that one
// fits in a probe or proof frame and peers can cap what they store.
const MaxSize = 1024

// Version is the first byte of every encoded descriptor.
const Version = 1

// Limits on the variable-size fields.
const (
	MaxAddrs         = 8
	MaxTransportName = 32
	MaxExitPolicy    = 256
	// MaxTransportParams bounds one address's transport parameters (what a
	// pluggable transport needs to dial it, e.g. obfs4's cert=…,iat-mode=0;
	// pt-spec passes them in SOCKS5's two 255-byte fields).
	MaxTransportParams = 510
)

// MaxLifetime bounds Expires − Published. A node re-signs its descriptor
// long before it expires, so only a node that means to outlive its own
// presence asks for more: a Sybil that joins with a descriptor valid for
// years and leaves would stay in every view, and among honest nodes'
// mimics, until then. Sign and Parse refuse longer lifetimes (ErrLifetime).
const MaxLifetime = 7 * 24 * time.Hour

// ClockSkew is how far Published may lie in the future, and Expires in the
// past, before Parse refuses a descriptor.
var ClockSkew = 5 * time.Minute

// signContext separates descriptor signatures from every other signature
// made with the identity key (e.g. reachability proofs).
const signContext = "tarzan-descriptor-v1"

var (
	ErrMalformed    = errors.New("descriptor: malformed")
	ErrTooLarge     = errors.New("descriptor: too large")
	ErrBadSignature = errors.New("descriptor: bad signature")
	ErrExpired      = errors.New("descriptor: expired")
	ErrNotYetValid  = errors.New("descriptor: not yet valid")
	// ErrLifetime: Expires − Published exceeds MaxLifetime.
	ErrLifetime = errors.New("descriptor: lifetime too long")
)

// Addr is one transport address a node can be reached at.
type Addr struct {
	Transport string // plugin name, e.g. "udp"; [a-z0-9-], 1..32 bytes
	AddrPort  netip.AddrPort
	// Params is what the transport needs besides the address to reach the
	// node (a pluggable transport's bridge arguments), empty for most:
	// 0..MaxTransportParams bytes of printable ASCII without spaces.
	Params string
}

// Field is a TLV field this version does not understand. Parse keeps such
// fields so that the signature (which covers them) can still be checked and
// so that a newer peer's descriptor is relayed unchanged.
type Field struct {
	Type  byte
	Value []byte
}

// Descriptor is what a node says about itself. Modifying fields after Sign
// or Parse does not change Encoded(); call Sign again.
type Descriptor struct {
	Identity   ed25519.PublicKey
	LinkKey    [32]byte // X25519 static key for Noise IK link handshakes
	OnionKey   [32]byte // X25519 key for tunnel handshakes (rotated; re-signed each time)
	Addrs      []Addr   // at least one
	Exit       bool
	ExitPolicy string // human summary, <= MaxExitPolicy bytes
	Published  time.Time
	Expires    time.Time
	// Unknown holds fields of types this version does not know, in type
	// order. They are re-encoded by Sign.
	Unknown []Field

	signature []byte
	encoded   []byte
}

// ID is the node ID of the descriptor's identity key.
func (d *Descriptor) ID() identity.ID { return identity.IDFromPublic(d.Identity) }

// Encoded returns the signed bytes the descriptor was parsed from or signed
// into (nil before either). The slice is shared: do not modify it.
func (d *Descriptor) Encoded() []byte { return d.encoded }

// Signature returns the Ed25519 signature of the encoding (shared slice).
func (d *Descriptor) Signature() []byte { return d.signature }

// Sign sets Identity from id, truncates Published and Expires to whole
// seconds (the wire precision), encodes, signs and returns the signed
// encoding, which Encoded returns from then on.
func (d *Descriptor) Sign(id *identity.Identity) ([]byte, error) {
	d.Identity = id.Public()
	d.Published = d.Published.Truncate(time.Second)
	d.Expires = d.Expires.Truncate(time.Second)
	body, err := d.encodeBody()
	if err != nil {
		return nil, err
	}
	if len(body)+tlvHeader+ed25519.SignatureSize > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes encoded, limit %d", ErrTooLarge, len(body)+tlvHeader+ed25519.SignatureSize, MaxSize)
	}
	sig := id.Sign(signedMessage(body))
	out := appendTLV(body, typeSignature, sig)
	d.signature = out[len(out)-ed25519.SignatureSize:]
	d.encoded = out
	return out, nil
}

// Parse decodes b, checks its lifetime (at most MaxLifetime, checked before
// the signature so a refusal costs no public-key work), verifies its
// signature and checks that now lies within [Published − ClockSkew,
// Expires + ClockSkew). Errors wrap ErrMalformed, ErrTooLarge, ErrLifetime,
// ErrBadSignature, ErrExpired or ErrNotYetValid. The result does not alias
// b.
func Parse(b []byte, now time.Time) (*Descriptor, error) {
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), MaxSize)
	}
	b = bytes.Clone(b)
	d, signedLen, err := decode(b)
	if err != nil {
		return nil, err
	}
	if err := checkLifetime(d); err != nil {
		return nil, err
	}
	if !ed25519.Verify(d.Identity, signedMessage(b[:signedLen]), d.signature) {
		return nil, fmt.Errorf("%w: for claimed node %s", ErrBadSignature, d.ID().Short())
	}
	if now.Add(ClockSkew).Before(d.Published) {
		return nil, fmt.Errorf("%w: node %s published at %s, now %s", ErrNotYetValid, d.ID().Short(), d.Published.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if !now.Add(-ClockSkew).Before(d.Expires) {
		return nil, fmt.Errorf("%w: node %s expired at %s, now %s", ErrExpired, d.ID().Short(), d.Expires.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return d, nil
}

func signedMessage(body []byte) []byte {
	m := make([]byte, 0, len(signContext)+len(body))
	return append(append(m, signContext...), body...)
}

func checkLifetime(d *Descriptor) error {
	if life := d.Expires.Sub(d.Published); life > MaxLifetime {
		return fmt.Errorf("%w: node %s published %s, expires %s: valid for %v, limit %v", ErrLifetime, d.ID().Short(),
			d.Published.UTC().Format(time.RFC3339), d.Expires.UTC().Format(time.RFC3339), life, MaxLifetime)
	}
	return nil
}
