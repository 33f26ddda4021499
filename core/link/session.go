package link

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/tarzan-net/tarzan/core/identity"
)

// Session timing and volume limits. Package variables so tests can shorten
// them; set them before creating sessions. The times are WireGuard's. The
// message limits are AES-GCM's (protocol v4; v3's ChaCha20-Poly1305 had
// WireGuard's 2^60): 2^32 frames of 88 AES blocks keep the advantage an
// observer gains from AES being a permutation below 2^-52, so a key that
// would see more is retired first (at 10 Gbit/s that takes over an hour;
// RekeyAfterTime ends a session long before).
var (
	RekeyAfterTime      = 120 * time.Second
	RejectAfterTime     = 180 * time.Second
	RekeyAfterMessages  = uint64(1) << 31
	RejectAfterMessages = uint64(1) << 32
	// ResponderRekeyAfterTime is the responder's fallback: the initiator
	// normally rekeys at RekeyAfterTime; if it has not by this age the
	// responder starts a handshake itself so the link does not lapse.
	ResponderRekeyAfterTime = 150 * time.Second
)

// Session is an established link session: per-direction AES-256-GCM keys
// from the Noise split, a send counter and a receive replay window.
// Seal and Open are safe for concurrent use by many goroutines.
type Session struct {
	send, recv  cipher.AEAD
	sendCounter atomic.Uint64

	localIndex, remoteIndex uint32
	remote                  identity.ID
	created                 time.Time
	initiator               bool
	peerFlags               Flags // the flags of the peer's handshake message
	// born is the wall-clock (monotonic) creation time; Seal and Open
	// measure RejectAfterTime from it unless SetClock gave a clock.
	born time.Time
	now  func() time.Time

	mu     sync.Mutex
	replay replayWindow
}

func newSession(initiator bool, localIndex, remoteIndex uint32, remote identity.ID, now time.Time, sendKey, recvKey [32]byte) (*Session, error) {
	send, err := newAEAD(&sendKey)
	if err != nil {
		return nil, err
	}
	recv, err := newAEAD(&recvKey)
	if err != nil {
		return nil, err
	}
	return &Session{
		send: send, recv: recv,
		localIndex: localIndex, remoteIndex: remoteIndex,
		remote: remote, created: now, initiator: initiator,
		born: time.Now(),
	}, nil
}

// newAEAD is the data frames' AEAD: AES-256-GCM (PROTOCOL.md §4.2).
// With the CPU's AES and carry-less multiply instructions, which the node
// already requires for its onion layers (onion.HardwareAES), it costs less
// than half of ChaCha20-Poly1305 per frame (docs/DECISIONS.md D37).
func newAEAD(key *[32]byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, fmt.Errorf("link: %w", err)
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		return nil, fmt.Errorf("link: %w", err)
	}
	return a, nil
}

// SetClock makes Seal and Open enforce RejectAfterTime as now() −
// Created(). Without it they use the real time elapsed since the session
// was made, which is right for a real clock and harmless under a virtual
// one (the node still drops sessions by Expired(now)). Call it before the
// session is shared.
func (s *Session) SetClock(now func() time.Time) { s.now = now }

// age is the session's age for the checks in Seal and Open.
func (s *Session) age() time.Duration {
	if s.now != nil {
		return s.now().Sub(s.created)
	}
	return time.Since(s.born)
}

// LocalIndex is the receiver index on frames sent to us.
func (s *Session) LocalIndex() uint32 { return s.localIndex }

// RemoteIndex is the receiver index we put on frames to the peer.
func (s *Session) RemoteIndex() uint32 { return s.remoteIndex }

// Remote is the peer's node ID: authenticated by the handshake on the
// responder side; the value given to Handshake.SetRemote on the initiator
// side (zero if none).
func (s *Session) Remote() identity.ID { return s.remote }

// Created is when the handshake completed (the now given to it).
func (s *Session) Created() time.Time { return s.created }

// PeerFlags are the flags the peer's handshake message carried (its
// initiation if we responded, its response if we initiated).
func (s *Session) PeerFlags() Flags { return s.peerFlags }

// Initiator reports whether this side started the handshake.
func (s *Session) Initiator() bool { return s.initiator }

// NeedsRekey reports whether a new handshake should be started: on the
// initiator after RekeyAfterTime; on the responder, as a fallback, after
// ResponderRekeyAfterTime; on either after RekeyAfterMessages sent.
func (s *Session) NeedsRekey(now time.Time) bool {
	if s.sendCounter.Load() >= RekeyAfterMessages {
		return true
	}
	age := now.Sub(s.created)
	if s.initiator {
		return age >= RekeyAfterTime
	}
	return age >= ResponderRekeyAfterTime
}

// Expired reports whether the session may no longer be used
// (RejectAfterTime or RejectAfterMessages reached).
func (s *Session) Expired(now time.Time) bool {
	return now.Sub(s.created) >= RejectAfterTime || s.sendCounter.Load() >= RejectAfterMessages
}

// Seal encrypts payload (exactly PayloadSize bytes) into a TypeData frame
// of FrameSize bytes appended to dst[:0]; with cap(dst) >= FrameSize it
// does not allocate. payload may be dst[HeaderSize:HeaderSize+PayloadSize]
// (in place) but must not otherwise overlap dst.
//
// The AEAD nonce is frame[4:16] = receiver_index(4) || counter(8): unique
// per key because the counter is, and already in the frame, so no nonce
// buffer escapes to the heap. The header is the associated data.
func (s *Session) Seal(dst, payload []byte) ([]byte, error) {
	if len(payload) != PayloadSize {
		return nil, fmt.Errorf("link: seal: payload is %d bytes, want %d", len(payload), PayloadSize)
	}
	if s.age() >= RejectAfterTime {
		return nil, fmt.Errorf("%w: session older than %v", ErrExpired, RejectAfterTime)
	}
	n := s.sendCounter.Add(1) - 1
	if n >= RejectAfterMessages {
		s.sendCounter.Store(RejectAfterMessages) // keep it from wrapping
		return nil, fmt.Errorf("%w: %d messages sent", ErrExpired, n)
	}
	var out []byte
	if cap(dst) >= FrameSize {
		out = dst[:FrameSize]
	} else {
		out = make([]byte, FrameSize)
	}
	if inexactOverlap(out[HeaderSize:], payload) {
		return nil, fmt.Errorf("link: seal: payload overlaps dst other than in place")
	}
	putHeader(out, TypeData, s.remoteIndex, n)
	s.send.Seal(out[HeaderSize:HeaderSize], out[4:HeaderSize], payload, out[:HeaderSize])
	return out, nil
}

// Open authenticates and decrypts a TypeData frame into dst (no allocation
// if cap(dst) >= PayloadSize), then checks the counter against the replay
// window. dst may be frame[HeaderSize:] (in place) but must not otherwise
// overlap frame. Errors: ErrMalformed (not a data frame for this session),
// ErrExpired, ErrAuth (bad tag), ErrReplay (counter seen or too old).
func (s *Session) Open(dst, frame []byte) ([]byte, error) {
	typ, ri, err := Header(frame)
	if err != nil {
		return nil, err
	}
	if typ != TypeData {
		return nil, fmt.Errorf("%w: type %d is not data", ErrMalformed, typ)
	}
	if ri != s.localIndex {
		return nil, fmt.Errorf("%w: receiver index %d, session has %d", ErrMalformed, ri, s.localIndex)
	}
	if s.age() >= RejectAfterTime {
		return nil, fmt.Errorf("%w: session older than %v", ErrExpired, RejectAfterTime)
	}
	var out []byte
	if cap(dst) >= PayloadSize {
		out = dst[:0]
	} else {
		out = make([]byte, 0, PayloadSize)
	}
	if inexactOverlap(out[:PayloadSize], frame[HeaderSize:]) {
		return nil, fmt.Errorf("link: open: dst overlaps frame other than in place")
	}
	out, err = s.recv.Open(out, frame[4:HeaderSize], frame[HeaderSize:], frame[:HeaderSize])
	if err != nil {
		return nil, ErrAuth
	}
	n := binary.BigEndian.Uint64(frame[8:HeaderSize])
	if n >= RejectAfterMessages {
		return nil, fmt.Errorf("%w: counter %d past the limit", ErrExpired, n)
	}
	s.mu.Lock()
	fresh := s.replay.check(n)
	s.mu.Unlock()
	if !fresh {
		return nil, ErrReplay
	}
	return out, nil
}

// inexactOverlap reports whether x and y share memory without starting at
// the same address (what the AEAD would panic on).
func inexactOverlap(x, y []byte) bool {
	if len(x) == 0 || len(y) == 0 {
		return false
	}
	xs, ys := uintptr(unsafe.Pointer(&x[0])), uintptr(unsafe.Pointer(&y[0]))
	xe, ye := xs+uintptr(len(x)), ys+uintptr(len(y))
	return xs < ye && ys < xe && xs != ys
}

// NewIndex draws a session index from rand: uniformly random and non-zero
// (0 marks handshake and probe frames). Indices travel in clear on every
// frame, so rand must be a cryptographic source (the node's crypto/rand):
// drawn from a statistical generator such as a PCG, whose state follows
// from a few of its outputs, they would let an observer predict which
// index a peer's next session gets and link sessions to it.
func NewIndex(rand io.Reader) (uint32, error) {
	var b [4]byte
	for {
		if _, err := io.ReadFull(rand, b[:]); err != nil {
			return 0, fmt.Errorf("link: reading randomness: %w", err)
		}
		if idx := binary.BigEndian.Uint32(b[:]); idx != 0 {
			return idx, nil
		}
	}
}
