package link

import (
	"bytes"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/flynn/noise"

	"github.com/tarzan-net/tarzan/core/identity"
)

// Prologue is mixed into every handshake so a Tarzan handshake can never
// be confused with another Noise protocol or a future version of this one.
const Prologue = "tarzan-link-v4"

// Flags is the one byte each handshake message carries in its encrypted
// payload (protocol v3). Bits not defined here must be zero.
type Flags byte

// FlagFresh says "when I made this message I held no established session
// with you": the sender restarted, or dropped the link. The receiver ends
// every route it holds on the link to that peer (they are dead at the
// other end), at once instead of after the link timeout. A rekey between
// live processes never carries it.
const FlagFresh Flags = 1 << 0

const knownFlags = FlagFresh

var cipherSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)

// Noise message sizes. Both payloads are fixed-size, so the messages are
// too, and the zero padding after them is unambiguous.
const (
	initPayloadSize = 32 + TimestampSize + 4 + 1 // node ID, TAI64N, sender index, flags
	respPayloadSize = 4 + 1                      // sender index, flags
	initMsgSize     = 32 + (32 + TagSize) + (initPayloadSize + TagSize)
	respMsgSize     = 32 + (respPayloadSize + TagSize)
)

var (
	// HandshakeTimeout bounds the time between Initiate and Finish; a
	// later response is refused with ErrStale (the node retries with a
	// fresh handshake).
	HandshakeTimeout = 5 * time.Second
	// MaxClockSkew bounds how far in the future an initiation timestamp
	// may lie. Accepting one far ahead would lock out the peer's later,
	// correct initiations until its clock caught up.
	MaxClockSkew = 5 * time.Minute
)

// Handshake is the initiator's state between Initiate and Finish. It is
// not safe for concurrent use.
type Handshake struct {
	local        Static
	remoteStatic [32]byte
	localIndex   uint32
	remote       identity.ID
	started      time.Time
	// payload and ephemeral let Finish rebuild the Noise state after a
	// forged response spoiled it: an attacker who can inject one frame
	// must not be able to kill a handshake.
	payload   [initPayloadSize]byte
	ephemeral [32]byte
	hs        *noise.HandshakeState
	done      bool
}

func noiseConfig(local Static, initiator bool, rand io.Reader) noise.Config {
	return noise.Config{
		CipherSuite:   cipherSuite,
		Random:        rand,
		Pattern:       noise.HandshakeIK,
		Initiator:     initiator,
		Prologue:      []byte(Prologue),
		StaticKeypair: noise.DHKey{Private: bytes.Clone(local.Private[:]), Public: bytes.Clone(local.Public[:])},
	}
}

// Initiate starts a handshake with the peer whose descriptor LinkKey is
// remoteStatic. localIndex (non-zero) is the receiver index the peer will
// put on frames for this session. It returns the TypeHandshakeInit frame.
// The initiation carries no flags (InitiateFlags sets them).
func Initiate(local Static, localID identity.ID, remoteStatic [32]byte, localIndex uint32, rand io.Reader, now time.Time) (*Handshake, []byte, error) {
	return InitiateFlags(local, localID, remoteStatic, localIndex, 0, rand, now)
}

// InitiateFlags is Initiate with the flags the initiation carries.
func InitiateFlags(local Static, localID identity.ID, remoteStatic [32]byte, localIndex uint32, flags Flags, rand io.Reader, now time.Time) (*Handshake, []byte, error) {
	if flags&^knownFlags != 0 {
		return nil, nil, fmt.Errorf("link: unknown handshake flags %#02x", byte(flags))
	}
	if localIndex == 0 {
		return nil, nil, errors.New("link: local index 0 is reserved for handshake frames")
	}
	h := &Handshake{local: local, remoteStatic: remoteStatic, localIndex: localIndex, started: now}
	if _, err := io.ReadFull(rand, h.ephemeral[:]); err != nil {
		return nil, nil, fmt.Errorf("link: reading randomness: %w", err)
	}
	copy(h.payload[:32], localID[:])
	ts := Timestamp(now)
	copy(h.payload[32:], ts[:])
	binary.BigEndian.PutUint32(h.payload[32+TimestampSize:], localIndex)
	h.payload[32+TimestampSize+4] = byte(flags)
	frame := newFrame(TypeHandshakeInit, 0)
	msg, err := h.start(frame[HeaderSize:HeaderSize])
	if err != nil {
		return nil, nil, err
	}
	if len(msg) != initMsgSize {
		return nil, nil, fmt.Errorf("link: internal error: initiation is %d bytes, want %d", len(msg), initMsgSize)
	}
	return h, frame, nil
}

// start (re)creates the Noise state and writes message 1 into out.
func (h *Handshake) start(out []byte) ([]byte, error) {
	cfg := noiseConfig(h.local, true, bytes.NewReader(h.ephemeral[:]))
	cfg.PeerStatic = bytes.Clone(h.remoteStatic[:])
	hs, err := noise.NewHandshakeState(cfg)
	if err != nil {
		return nil, fmt.Errorf("link: noise: %w", err)
	}
	msg, _, _, err := hs.WriteMessage(out, h.payload[:])
	if err != nil {
		// Only a low-order remote static key gets here.
		return nil, fmt.Errorf("%w: cannot handshake with this link key: %v", ErrAuth, err)
	}
	h.hs = hs
	return msg, nil
}

// SetRemote records the node ID the initiator expects to reach (the one
// whose descriptor gave remoteStatic); the Session reports it as Remote.
// IK already authenticates the peer as the holder of remoteStatic.
func (h *Handshake) SetRemote(id identity.ID) { h.remote = id }

// LocalIndex is the index given to Initiate.
func (h *Handshake) LocalIndex() uint32 { return h.localIndex }

// Started is the time given to Initiate.
func (h *Handshake) Started() time.Time { return h.started }

// Finish completes the handshake with the responder's TypeHandshakeResp
// frame. A frame that fails leaves the handshake usable for the genuine
// response; after success the handshake is spent (ErrStale).
func (h *Handshake) Finish(respFrame []byte, now time.Time) (*Session, error) {
	if h.done {
		return nil, fmt.Errorf("%w: handshake already finished", ErrStale)
	}
	if err := checkControl(respFrame, TypeHandshakeResp, respMsgSize); err != nil {
		return nil, err
	}
	if ri := binary.BigEndian.Uint32(respFrame[4:8]); ri != h.localIndex {
		return nil, fmt.Errorf("%w: response for index %d, want %d", ErrMalformed, ri, h.localIndex)
	}
	if now.Sub(h.started) > HandshakeTimeout {
		return nil, fmt.Errorf("%w: response after %v", ErrStale, now.Sub(h.started))
	}
	if h.hs == nil {
		if _, err := h.start(nil); err != nil {
			return nil, err
		}
	}
	var buf [respPayloadSize]byte
	payload, cs1, cs2, err := h.hs.ReadMessage(buf[:0], respFrame[HeaderSize:HeaderSize+respMsgSize])
	if err != nil {
		h.hs = nil // rebuilt on the next attempt
		return nil, fmt.Errorf("%w: handshake response: %v", ErrAuth, err)
	}
	if len(payload) != respPayloadSize || cs1 == nil {
		h.hs = nil
		return nil, fmt.Errorf("%w: handshake response payload is %d bytes", ErrMalformed, len(payload))
	}
	remoteIndex := binary.BigEndian.Uint32(payload)
	if remoteIndex == 0 {
		h.hs = nil
		return nil, fmt.Errorf("%w: responder index 0", ErrMalformed)
	}
	flags := Flags(payload[4])
	if flags&^knownFlags != 0 {
		h.hs = nil
		return nil, fmt.Errorf("%w: unknown handshake flags %#02x", ErrMalformed, byte(flags))
	}
	h.done = true
	h.hs = nil
	s, err := newSession(true, h.localIndex, remoteIndex, h.remote, now, cs1.UnsafeKey(), cs2.UnsafeKey())
	if err != nil {
		return nil, err
	}
	s.peerFlags = flags
	return s, nil
}

// Respond handles a TypeHandshakeInit frame. lookup maps the initiator's
// claimed node ID to the link static key the responder expects (from the
// admitted descriptor) and to the flags the response is to carry, and may
// refuse it (e.g. not a mimic); Respond fails with ErrAuth, wrapping
// lookup's error, if it does, and with ErrAuth if the Noise-authenticated
// static key differs from the expected one. The initiator's flags are the
// session's PeerFlags.
// lastTimestamp is the newest timestamp already accepted from that peer
// (zero if none); an initiation whose timestamp is not newer fails with
// ErrReplay. On success the caller must record ts as that peer's newest
// timestamp before accepting another initiation from it.
func Respond(local Static, initFrame []byte, localIndex uint32, rand io.Reader, now time.Time,
	lookup func(remote identity.ID) (expectedStatic [32]byte, lastTimestamp [12]byte, flags Flags, err error),
) (s *Session, respFrame []byte, remote identity.ID, ts [12]byte, err error) {
	fail := func(err error) (*Session, []byte, identity.ID, [12]byte, error) {
		return nil, nil, identity.ID{}, [12]byte{}, err
	}
	if localIndex == 0 {
		return fail(errors.New("link: local index 0 is reserved for handshake frames"))
	}
	if err := checkControl(initFrame, TypeHandshakeInit, initMsgSize); err != nil {
		return fail(err)
	}
	if ri := binary.BigEndian.Uint32(initFrame[4:8]); ri != 0 {
		return fail(fmt.Errorf("%w: initiation with receiver index %d", ErrMalformed, ri))
	}
	hs, err := noise.NewHandshakeState(noiseConfig(local, false, rand))
	if err != nil {
		return fail(fmt.Errorf("link: noise: %w", err))
	}
	var buf [initPayloadSize]byte
	payload, _, _, err := hs.ReadMessage(buf[:0], initFrame[HeaderSize:HeaderSize+initMsgSize])
	if err != nil {
		return fail(fmt.Errorf("%w: handshake initiation: %v", ErrAuth, err))
	}
	if len(payload) != initPayloadSize {
		return fail(fmt.Errorf("%w: initiation payload is %d bytes", ErrMalformed, len(payload)))
	}
	remote = identity.ID(payload[:32])
	ts = [12]byte(payload[32 : 32+TimestampSize])
	remoteIndex := binary.BigEndian.Uint32(payload[32+TimestampSize:])
	if remoteIndex == 0 {
		return fail(fmt.Errorf("%w: initiator index 0", ErrMalformed))
	}
	peerFlags := Flags(payload[32+TimestampSize+4])
	if peerFlags&^knownFlags != 0 {
		return fail(fmt.Errorf("%w: unknown handshake flags %#02x", ErrMalformed, byte(peerFlags)))
	}
	expected, last, flags, err := lookup(remote)
	if err != nil {
		return fail(fmt.Errorf("%w: initiator %s refused: %w", ErrAuth, remote.Short(), err))
	}
	if subtle.ConstantTimeCompare(expected[:], hs.PeerStatic()) != 1 {
		return fail(fmt.Errorf("%w: initiator claiming %s used a link key other than its descriptor's", ErrAuth, remote.Short()))
	}
	if bytes.Compare(ts[:], last[:]) <= 0 {
		return fail(fmt.Errorf("%w: initiation from %s not newer than the last one", ErrReplay, remote.Short()))
	}
	if timestampTime(ts).After(now.Add(MaxClockSkew)) {
		return fail(fmt.Errorf("%w: initiation from %s is dated %s, now %s", ErrStale, remote.Short(), timestampTime(ts).UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)))
	}
	if flags&^knownFlags != 0 {
		return fail(fmt.Errorf("link: unknown handshake flags %#02x", byte(flags)))
	}
	respFrame = newFrame(TypeHandshakeResp, remoteIndex)
	var rp [respPayloadSize]byte
	binary.BigEndian.PutUint32(rp[:], localIndex)
	rp[4] = byte(flags)
	msg, cs1, cs2, err := hs.WriteMessage(respFrame[HeaderSize:HeaderSize], rp[:])
	if err != nil {
		return fail(fmt.Errorf("%w: handshake response: %v", ErrAuth, err))
	}
	if len(msg) != respMsgSize || cs1 == nil {
		return fail(fmt.Errorf("link: internal error: response is %d bytes, want %d", len(msg), respMsgSize))
	}
	s, err = newSession(false, localIndex, remoteIndex, remote, now, cs2.UnsafeKey(), cs1.UnsafeKey())
	if err != nil {
		return fail(err)
	}
	s.peerFlags = peerFlags
	return s, respFrame, remote, ts, nil
}
