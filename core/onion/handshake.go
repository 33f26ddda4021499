package onion

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
)

// protoID names the handshake in every derivation (docs/PROTOCOL.md §6).
const protoID = "tarzan-ntor-v3"

const (
	hkdfInfo   = protoID + ":keys"
	authSuffix = "server"
	keyLen     = 32
	baseLen    = 4
	authLen    = 32
	resumeLen  = 32
	okmLen     = 2*keyLen + 2*baseLen + authLen + resumeLen // Kf || Kb || Bf || Bb || Kauth || Kr (136)
)

// OnionKeys are a node's X25519 onion private keys. Previous (may be nil)
// keeps handshakes working for clients that fetched a descriptor from
// before the last rotation. Build with NewOnionKeys to cache the public
// keys; a literal works too but recomputes them on every handshake.
type OnionKeys struct {
	Current, Previous *[32]byte

	curPub, prevPub *[32]byte        // cached by NewOnionKeys
	curSK, prevSK   *ecdh.PrivateKey // likewise: crypto/ecdh computes the public key when it makes one
}

// NewOnionKeys returns OnionKeys with the public keys precomputed.
func NewOnionKeys(current, previous *[32]byte) (OnionKeys, error) {
	k := OnionKeys{Current: current, Previous: previous}
	if current == nil {
		return k, fmt.Errorf("%w: no current onion key", ErrMalformed)
	}
	var err error
	if k.curSK, k.curPub, err = expandOnionKey(current); err != nil {
		return k, err
	}
	if previous != nil {
		if k.prevSK, k.prevPub, err = expandOnionKey(previous); err != nil {
			return k, err
		}
	}
	return k, nil
}

func expandOnionKey(private *[32]byte) (*ecdh.PrivateKey, *[32]byte, error) {
	sk, err := ecdh.X25519().NewPrivateKey(private[:])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: onion private key: %v", ErrMalformed, err)
	}
	var pub [32]byte
	copy(pub[:], sk.PublicKey().Bytes())
	return sk, &pub, nil
}

// PublicKey returns the X25519 public key of an onion private key.
func PublicKey(private *[32]byte) ([32]byte, error) {
	var pub [32]byte
	sk, err := ecdh.X25519().NewPrivateKey(private[:])
	if err != nil {
		return pub, fmt.Errorf("%w: onion private key: %v", ErrMalformed, err)
	}
	copy(pub[:], sk.PublicKey().Bytes())
	return pub, nil
}

// GenerateOnionKey makes a fresh onion key pair from rand (nil means
// crypto/rand).
func GenerateOnionKey(rnd io.Reader) (private, public [32]byte, err error) {
	sk, err := newPrivate(rnd)
	if err != nil {
		return private, public, err
	}
	copy(private[:], sk.Bytes())
	copy(public[:], sk.PublicKey().Bytes())
	return private, public, nil
}

// newPrivate reads the scalar from rnd itself: crypto/ecdh's GenerateKey
// ignores its reader (Go ≥ 1.26), and test vectors need a fixed one.
func newPrivate(rnd io.Reader) (*ecdh.PrivateKey, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	var b [32]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return nil, fmt.Errorf("onion: reading randomness: %w", err)
	}
	return ecdh.X25519().NewPrivateKey(b[:])
}

// ClientHandshake is the initiator's side of one hop's handshake.
type ClientHandshake struct {
	nodeID   [32]byte
	onionKey [32]byte
	x        *ecdh.PrivateKey
	xPub     [32]byte
	xb       []byte // B^x, computed up front to reject a bad onion key early
}

// NewClientHandshake starts a handshake with the node nodeID whose onion
// public key is onionKey; it returns the message (ClientMsgLen bytes) to
// send in CREATE or EXTEND. rand nil means crypto/rand.
func NewClientHandshake(rnd io.Reader, nodeID [32]byte, onionKey [32]byte) (*ClientHandshake, []byte, error) {
	x, err := newPrivate(rnd)
	if err != nil {
		return nil, nil, err
	}
	return NewClientHandshakeKey(x, nodeID, onionKey)
}

// NewEphemeral makes the X25519 key pair of one handshake (either side)
// ahead of time, so that the scalar multiplication that makes its public
// key is off a build's critical path. The key must be used for exactly
// one handshake (NewClientHandshakeKey or ServerHandshakeKey) and then
// dropped. rand nil means crypto/rand.
func NewEphemeral(rnd io.Reader) (*ecdh.PrivateKey, error) { return newPrivate(rnd) }

// NewClientHandshakeKey is NewClientHandshake with the ephemeral key x
// made beforehand by NewEphemeral (and used for nothing else).
func NewClientHandshakeKey(x *ecdh.PrivateKey, nodeID [32]byte, onionKey [32]byte) (*ClientHandshake, []byte, error) {
	if x == nil || x.Curve() != ecdh.X25519() {
		return nil, nil, fmt.Errorf("%w: ephemeral key is not an X25519 key", ErrHandshake)
	}
	b, err := ecdh.X25519().NewPublicKey(onionKey[:])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: onion key: %v", ErrHandshake, err)
	}
	xb, err := x.ECDH(b) // fails on an all-zero output (low-order onion key)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: onion key: %v", ErrHandshake, err)
	}
	c := &ClientHandshake{nodeID: nodeID, onionKey: onionKey, x: x, xb: xb}
	copy(c.xPub[:], x.PublicKey().Bytes())
	msg := make([]byte, 0, ClientMsgLen)
	msg = append(msg, nodeID[:]...)
	msg = append(msg, onionKey[:]...)
	msg = append(msg, c.xPub[:]...)
	return c, msg, nil
}

// Finish checks the server's reply (ServerMsgLen bytes) and returns the
// hop's keys. A reply that does not prove knowledge of the onion private
// key is ErrHandshake. After a success the handshake is spent.
func (c *ClientHandshake) Finish(reply []byte) (*Keys, error) {
	if len(reply) != ServerMsgLen {
		return nil, fmt.Errorf("%w: handshake reply of %d bytes", ErrMalformed, len(reply))
	}
	if c.x == nil {
		return nil, fmt.Errorf("%w: handshake already finished", ErrHandshake)
	}
	var yPub [32]byte
	copy(yPub[:], reply[:32])
	y, err := ecdh.X25519().NewPublicKey(yPub[:])
	if err != nil {
		return nil, fmt.Errorf("%w: server ephemeral: %v", ErrHandshake, err)
	}
	xy, err := c.x.ECDH(y)
	if err != nil {
		return nil, fmt.Errorf("%w: server ephemeral: %v", ErrHandshake, err)
	}
	keys, authKey, err := deriveKeys(xy, c.xb, &c.nodeID, &c.onionKey, &c.xPub, &yPub)
	if err != nil {
		return nil, err
	}
	want := serverAuth(authKey, &c.nodeID, &c.onionKey, &yPub, &c.xPub)
	if !hmac.Equal(want, reply[32:]) {
		keys.Wipe()
		return nil, fmt.Errorf("%w: server auth does not verify", ErrHandshake)
	}
	c.x, c.xb = nil, nil
	return keys, nil
}

// ServerHandshake answers a client message addressed to nodeID under one of
// keys, returning the reply (ServerMsgLen bytes) and the hop's keys. rand
// nil means crypto/rand.
func ServerHandshake(rnd io.Reader, nodeID [32]byte, keys OnionKeys, msg []byte) (reply []byte, k *Keys, err error) {
	return serverHandshake(rnd, nil, nodeID, keys, msg)
}

// ServerHandshakeKey is ServerHandshake with the ephemeral key y made
// beforehand by NewEphemeral (and used for nothing else): the relay's
// answer then costs two scalar multiplications instead of three.
func ServerHandshakeKey(y *ecdh.PrivateKey, nodeID [32]byte, keys OnionKeys, msg []byte) (reply []byte, k *Keys, err error) {
	if y == nil || y.Curve() != ecdh.X25519() {
		return nil, nil, fmt.Errorf("%w: ephemeral key is not an X25519 key", ErrHandshake)
	}
	return serverHandshake(nil, y, nodeID, keys, msg)
}

func serverHandshake(rnd io.Reader, y *ecdh.PrivateKey, nodeID [32]byte, keys OnionKeys, msg []byte) (reply []byte, k *Keys, err error) {
	if len(msg) != ClientMsgLen {
		return nil, nil, fmt.Errorf("%w: handshake message of %d bytes", ErrMalformed, len(msg))
	}
	if subtle.ConstantTimeCompare(msg[:32], nodeID[:]) != 1 {
		return nil, nil, fmt.Errorf("%w: message for another node", ErrHandshake)
	}
	var bPub, xPub [32]byte
	copy(bPub[:], msg[32:64])
	copy(xPub[:], msg[64:96])
	priv, b, err := keys.match(&bPub)
	if err != nil {
		return nil, nil, err
	}
	if b == nil { // OnionKeys made without NewOnionKeys
		if b, err = ecdh.X25519().NewPrivateKey(priv[:]); err != nil {
			return nil, nil, fmt.Errorf("%w: onion private key: %v", ErrMalformed, err)
		}
	}
	x, err := ecdh.X25519().NewPublicKey(xPub[:])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: client ephemeral: %v", ErrHandshake, err)
	}
	xb, err := b.ECDH(x)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: client ephemeral: %v", ErrHandshake, err)
	}
	if y == nil {
		if y, err = newPrivate(rnd); err != nil {
			return nil, nil, err
		}
	}
	xy, err := y.ECDH(x)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: client ephemeral: %v", ErrHandshake, err)
	}
	var yPub [32]byte
	copy(yPub[:], y.PublicKey().Bytes())
	k, authKey, err := deriveKeys(xy, xb, &nodeID, &bPub, &xPub, &yPub)
	if err != nil {
		return nil, nil, err
	}
	reply = make([]byte, 0, ServerMsgLen)
	reply = append(reply, yPub[:]...)
	reply = append(reply, serverAuth(authKey, &nodeID, &bPub, &yPub, &xPub)...)
	return reply, k, nil
}

// match returns the private key whose public key the client named, and
// its expanded form when NewOnionKeys cached it (else nil).
func (k OnionKeys) match(bPub *[32]byte) (*[32]byte, *ecdh.PrivateKey, error) {
	for _, pair := range [...]struct {
		priv, pub *[32]byte
		sk        *ecdh.PrivateKey
	}{{k.Current, k.curPub, k.curSK}, {k.Previous, k.prevPub, k.prevSK}} {
		if pair.priv == nil {
			continue
		}
		pub := pair.pub
		if pub == nil {
			p, err := PublicKey(pair.priv)
			if err != nil {
				return nil, nil, err
			}
			pub = &p
		}
		if subtle.ConstantTimeCompare(pub[:], bPub[:]) == 1 {
			return pair.priv, pair.sk, nil
		}
	}
	return nil, nil, fmt.Errorf("%w: unknown onion key", ErrHandshake)
}

// deriveKeys runs HKDF-SHA256 over
// secret_input = X^y || X^b || nodeID || B || X || Y || protoID.
func deriveKeys(xy, xb []byte, nodeID, b, x, y *[32]byte) (*Keys, []byte, error) {
	secret := make([]byte, 0, 32*6+len(protoID))
	secret = append(secret, xy...)
	secret = append(secret, xb...)
	secret = append(secret, nodeID[:]...)
	secret = append(secret, b[:]...)
	secret = append(secret, x[:]...)
	secret = append(secret, y[:]...)
	secret = append(secret, protoID...)
	okm, err := hkdf.Key(sha256.New, secret, []byte(protoID), hkdfInfo, okmLen)
	clear(secret)
	if err != nil {
		return nil, nil, fmt.Errorf("onion: hkdf: %w", err)
	}
	k := &Keys{}
	copy(k.fwdKey[:], okm)
	copy(k.bwdKey[:], okm[keyLen:])
	k.fwdBase = counterBase(okm[2*keyLen:])
	k.bwdBase = counterBase(okm[2*keyLen+baseLen:])
	copy(k.resume[:], okm[2*keyLen+2*baseLen+authLen:])
	authKey := okm[2*keyLen+2*baseLen : 2*keyLen+2*baseLen+authLen]
	clear(okm[:2*keyLen+2*baseLen])
	clear(okm[2*keyLen+2*baseLen+authLen:])
	return k, authKey, nil
}

// serverAuth = HMAC-SHA256(authKey, nodeID || B || Y || X || "server").
func serverAuth(authKey []byte, nodeID, b, y, x *[32]byte) []byte {
	m := hmac.New(sha256.New, authKey)
	m.Write(nodeID[:])
	m.Write(b[:])
	m.Write(y[:])
	m.Write(x[:])
	m.Write([]byte(authSuffix))
	return m.Sum(nil)
}
