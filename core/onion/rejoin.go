package onion

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"io"
)

// Rejoin: the initiator moves a tunnel's last hop (the exit) onto a new
// path without a new handshake, so the exit keeps the circuit and the flow
// state behind it (docs/PROTOCOL.md §6.1, §9).
//
// Both ends of a hop keep Kr, the resume key from the handshake; it
// encrypts nothing. Rejoin generation g = 1, 2, … has the point
// X_g = x_g·G, x_g = HKDF-SHA256(Kr, "tarzan-rejoin-v3:x" || g) read as a
// clamped X25519 scalar. The initiator sends ID || B || X_g, which is laid
// out like an ordinary handshake message and whose X is a point like any
// ephemeral, so the hop that carries it cannot tell it from a CREATE. The
// exit finds X_g in its index of last-hop circuits (the index is the
// caller's), answers Y || auth with Y a fresh ephemeral public key and
// auth = HMAC-SHA256(Kr, "tarzan-rejoin-v3:auth" || g || X_g || Y), again
// laid out like an ordinary reply, and moves on to X_{g+1}: an observed
// rejoin message is spent, a replay of it is an ordinary (failing or
// unrelated) handshake.

const (
	rejoinXLabel    = "tarzan-rejoin-v3:x"
	rejoinAuthLabel = "tarzan-rejoin-v3:auth"
)

// rejoinPoint returns X_g for resume key kr.
func rejoinPoint(kr *[32]byte, g uint32) ([32]byte, error) {
	var X [32]byte
	info := binary.BigEndian.AppendUint32([]byte(rejoinXLabel), g)
	x, err := hkdf.Key(sha256.New, kr[:], nil, string(info), 32)
	if err != nil {
		return X, fmt.Errorf("onion: hkdf: %w", err)
	}
	sk, err := ecdh.X25519().NewPrivateKey(x) // clamps, as for any ephemeral
	clear(x)
	if err != nil {
		return X, fmt.Errorf("%w: rejoin scalar: %v", ErrMalformed, err)
	}
	copy(X[:], sk.PublicKey().Bytes())
	return X, nil
}

// rejoinAuth = HMAC-SHA256(Kr, "tarzan-rejoin-v3:auth" || g || X || Y).
func rejoinAuth(kr *[32]byte, g uint32, x, y *[32]byte) []byte {
	m := hmac.New(sha256.New, kr[:])
	m.Write([]byte(rejoinAuthLabel))
	var gb [4]byte
	binary.BigEndian.PutUint32(gb[:], g)
	m.Write(gb[:])
	m.Write(x[:])
	m.Write(y[:])
	return m.Sum(nil)
}

// rejoinState is one end's rejoin generation and resume key.
type rejoinState struct {
	resume [32]byte
	gen    uint32    // generation of the next rejoin (starts at 1)
	point  *[32]byte // X_gen, once computed
}

func newRejoinState(kr *[32]byte) rejoinState { return rejoinState{resume: *kr, gen: 1} }

func (s *rejoinState) current() ([32]byte, error) {
	if s.point == nil {
		X, err := rejoinPoint(&s.resume, s.gen)
		if err != nil {
			return X, err
		}
		s.point = &X
	}
	return *s.point, nil
}

func (s *rejoinState) wipe() { *s = rejoinState{} }

// RejoinPoint returns the point X_g the initiator's next rejoin of this
// circuit will carry; the caller indexes the circuit by it. Computed once
// per generation (one base-point multiplication).
func (r *Relay) RejoinPoint() ([32]byte, error) {
	r.rjMu.Lock()
	defer r.rjMu.Unlock()
	return r.rj.current()
}

// AcceptRejoin answers a rejoin message msg (ClientMsgLen bytes) whose
// point is this circuit's current X_g; the caller checked the node ID and
// onion key. It returns the reply (ServerMsgLen bytes) and the point of
// the next generation, by which the caller re-indexes the circuit. A
// message with another point is ErrHandshake and changes nothing. rand nil
// means crypto/rand.
func (r *Relay) AcceptRejoin(rnd io.Reader, msg []byte) (reply []byte, next [32]byte, err error) {
	if len(msg) != ClientMsgLen {
		return nil, next, fmt.Errorf("%w: rejoin message of %d bytes", ErrMalformed, len(msg))
	}
	r.rjMu.Lock()
	defer r.rjMu.Unlock()
	X, err := r.rj.current()
	if err != nil {
		return nil, next, err
	}
	if subtle.ConstantTimeCompare(X[:], msg[64:96]) != 1 {
		return nil, next, fmt.Errorf("%w: not this circuit's rejoin point", ErrHandshake)
	}
	y, err := newPrivate(rnd)
	if err != nil {
		return nil, next, err
	}
	// X^y, as the ordinary handshake computes it, is not needed here; it
	// is computed so that a rejoin costs the exit the same X25519
	// operations before it answers as a handshake does (X^b, Y, X^y there;
	// Y, X^y and the next point here), and the hop that carries the CREATE
	// cannot tell the two apart by how long the answer takes.
	if xk, err := ecdh.X25519().NewPublicKey(X[:]); err == nil {
		if xy, err := y.ECDH(xk); err == nil {
			clear(xy)
		}
	}
	var yPub [32]byte
	copy(yPub[:], y.PublicKey().Bytes())
	reply = make([]byte, 0, ServerMsgLen)
	reply = append(reply, yPub[:]...)
	reply = append(reply, rejoinAuth(&r.rj.resume, r.rj.gen, &X, &yPub)...)
	r.rj.gen++
	r.rj.point = nil
	if next, err = r.rj.current(); err != nil {
		return nil, next, err
	}
	r.fwdMu.Lock()
	r.resync = true // the initiator's counters ran on while cells were lost
	r.fwdMu.Unlock()
	return reply, next, nil
}

// SetAside keeps the first keep hops, puts the last hop aside with its
// keys, counters and windows, and wipes the hops in between: the tunnel
// is regrown through new hops and the last hop rejoined to them
// (RejoinMessage, Rejoin) without a new handshake with it. Until then Len
// counts only the kept hops, and no cell is sealed to or opened from the
// hop set aside.
func (p *Path) SetAside(keep int) error {
	p.lockAll()
	defer p.unlockAll()
	switch {
	case p.aside != nil:
		return fmt.Errorf("%w: a hop is already set aside", ErrNoSuchHop)
	case keep < 0 || keep >= len(p.hops):
		return fmt.Errorf("set aside keeping %d of %d hops: %w", keep, len(p.hops), ErrNoSuchHop)
	}
	last := len(p.hops) - 1
	p.aside = p.hops[last]
	for _, h := range p.hops[keep:last] {
		h.wipe()
	}
	clear(p.hops[keep:])
	p.hops = p.hops[:keep]
	return nil
}

// Aside reports whether a hop is set aside.
func (p *Path) Aside() bool {
	p.fwdMu.Lock()
	defer p.fwdMu.Unlock()
	return p.aside != nil
}

// DropAside wipes the hop set aside (the rejoin is given up).
func (p *Path) DropAside() {
	p.lockAll()
	defer p.unlockAll()
	if p.aside != nil {
		p.aside.wipe()
		p.aside = nil
	}
}

// RejoinMessage returns the message (ClientMsgLen bytes) that rejoins the
// hop set aside, the node nodeID whose onion public key is onionKey: it is
// sent in CREATE or EXTEND like a handshake message.
func (p *Path) RejoinMessage(nodeID, onionKey [32]byte) ([]byte, error) {
	p.lockAll()
	defer p.unlockAll()
	if p.aside == nil {
		return nil, fmt.Errorf("%w: no hop set aside", ErrNoSuchHop)
	}
	X, err := p.aside.rj.current()
	if err != nil {
		return nil, err
	}
	msg := make([]byte, 0, ClientMsgLen)
	msg = append(msg, nodeID[:]...)
	msg = append(msg, onionKey[:]...)
	msg = append(msg, X[:]...)
	return msg, nil
}

// Rejoin checks the reply to RejoinMessage and appends the hop set aside
// to the path again; its counters carry on where they were (cells lost
// meanwhile are a gap the windows allow: the first cell each way may
// jump up to maxResync key generations). A reply that does not prove
// knowledge of the resume key is ErrHandshake and leaves the hop aside.
func (p *Path) Rejoin(reply []byte) error {
	if len(reply) != ServerMsgLen {
		return fmt.Errorf("%w: rejoin reply of %d bytes", ErrMalformed, len(reply))
	}
	p.lockAll()
	defer p.unlockAll()
	h := p.aside
	switch {
	case h == nil:
		return fmt.Errorf("%w: no hop set aside", ErrNoSuchHop)
	case len(p.hops) >= MaxHops:
		return fmt.Errorf("rejoin as hop %d: %w", len(p.hops)+1, ErrTooManyHops)
	}
	X, err := h.rj.current()
	if err != nil {
		return err
	}
	var yPub [32]byte
	copy(yPub[:], reply[:32])
	if !hmac.Equal(rejoinAuth(&h.rj.resume, h.rj.gen, &X, &yPub), reply[32:]) {
		return fmt.Errorf("%w: rejoin auth does not verify", ErrHandshake)
	}
	h.rj.gen++
	h.rj.point = nil
	h.resync = true // the hop's counters ran on while its cells were lost
	p.hops = append(p.hops, h)
	p.aside = nil
	return nil
}

// Has reports whether pub is the public key of one of these onion keys.
func (k OnionKeys) Has(pub [32]byte) bool {
	_, _, err := k.match(&pub)
	return err == nil
}
