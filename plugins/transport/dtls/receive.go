package dtls

// The receive loop (one goroutine per transport, started by Listen) reads
// the socket and routes every datagram by its source address:
//
//  1. a known address: to its session (and to the handshake running
//     alongside to replace it, if any; pion drops what it cannot decrypt);
//     a ClientHello there means a simultaneous open (settled by comparing
//     ClientHello randoms) or a peer that restarted (a new handshake runs
//     alongside the old session and replaces it once it is done);
//  2. an unknown address sending a ClientHello: a new server-role session,
//     unless max_handshakes are already running; pion answers it with a
//     HelloVerifyRequest cookie before any expensive work;
//  3. an unknown address sending an application-data record: perhaps a
//     peer whose NAT rebound its port. The record is trial-decrypted under
//     each established session's receive key; the session whose key opens
//     it, if the record is newer than any seen, moves to the new address
//     (the old one stays an alias so writes to it still arrive);
//  4. anything else is dropped and counted.
//
// Records are copied before they are queued to a session, so the loop
// reuses one buffer.

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"time"

	"github.com/pion/dtls/v3/pkg/protocol/recordlayer"
)

// maxTrials bounds the trial decryptions one unknown datagram may cost.
const maxTrials = 64

// maxAliases bounds the old addresses a migrated session keeps.
const maxAliases = 4

func (t *dtlsTransport) receive(conn *net.UDPConn) {
	defer t.wg.Done()
	buf := make([]byte, 1<<16)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			select {
			case <-t.done:
				return
			case <-time.After(time.Millisecond): // a transient error; do not spin
			}
			continue
		}
		t.route(unmap(from), buf[:n])
	}
}

func (t *dtlsTransport) route(from netip.AddrPort, b []byte) {
	rec, ok := parseRecord(b)
	if !ok {
		t.stats.inputDrops.Add(1)
		return
	}
	hello, isHello := clientHelloRandom(b)

	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	s := t.sessions[from]
	switch {
	case s != nil && isHello:
		t.helloAtKnown(s, from, hello, b) // unlocks
		return
	case s != nil:
		next := s.next
		raise := rec.contentType == contentApplicationData && rec.epoch > 0 && s.remote() == from && rec.seq > s.maxSeq.Load()
		t.mu.Unlock()
		if raise {
			s.noteSeq(rec, b[:recordHeaderLen+rec.length])
		}
		s.deliver(b)
		if next != nil {
			next.deliver(b)
		}
		return
	case isHello:
		if t.handshakes >= t.opts.maxHandshakes {
			t.mu.Unlock()
			t.stats.inputDrops.Add(1)
			return
		}
		ns := t.newSession(from, false)
		ns.peerHello.Store(&hello)
		ns.counted = true
		t.handshakes++
		t.sessions[from] = ns
		ns.start()
		t.mu.Unlock()
		ns.deliver(b)
		return
	case rec.contentType == contentApplicationData && rec.epoch > 0:
		cands := t.established()
		t.mu.Unlock()
		t.migrate(from, rec, b[:recordHeaderLen+rec.length], b, cands)
		return
	default:
		t.mu.Unlock()
		t.stats.inputDrops.Add(1)
	}
}

// helloAtKnown handles a ClientHello from an address that has a session.
// Called with t.mu held; unlocks it.
func (t *dtlsTransport) helloAtKnown(s *session, from netip.AddrPort, hello [32]byte, b []byte) {
	up := s.up()
	switch {
	case !s.client && !up, s.next != nil:
		// A retransmission, or the ClientHello answering our cookie, or
		// one for the replacement handshake already running.
		next := s.next
		t.mu.Unlock()
		if next != nil {
			next.deliver(b)
		} else {
			s.deliver(b)
		}
	case s.client && !up:
		// Simultaneous open: both sides sent a ClientHello. The side whose
		// random is lower stays the client; the other becomes the server
		// and keeps what it had queued.
		ours := s.ourHello.Load()
		if ours == nil || bytes.Compare(ours[:], hello[:]) < 0 {
			t.mu.Unlock()
			t.stats.inputDrops.Add(1)
			return
		}
		ns := t.newSession(from, false)
		ns.peerHello.Store(&hello)
		s.detached.Store(true)
		s.mu.Lock()
		ns.queue, s.queue = s.queue, nil
		s.movedTo = ns // a WriteBatch that already holds s follows it
		s.mu.Unlock()
		t.sessions[from] = ns
		ns.start()
		t.mu.Unlock()
		s.close()
		ns.deliver(b)
	default:
		// Established: a retransmitted ClientHello of this session's own
		// handshake goes to it; any other means the peer lost its state.
		if ph := s.peerHello.Load(); ph != nil && *ph == hello {
			t.mu.Unlock()
			s.deliver(b)
			return
		}
		if t.handshakes >= t.opts.maxHandshakes {
			t.mu.Unlock()
			t.stats.inputDrops.Add(1)
			return
		}
		ns := t.newSession(from, false)
		ns.peerHello.Store(&hello)
		ns.counted = true
		t.handshakes++
		ns.replaces = s
		s.next = ns
		ns.start()
		t.mu.Unlock()
		ns.deliver(b)
	}
}

// established lists the sessions that are up, once each. Called with t.mu held.
func (t *dtlsTransport) established() []*session {
	var out []*session
	seen := make(map[*session]bool)
	for _, s := range t.sessions {
		if !seen[s] && len(out) < maxTrials && s.up() {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// migrate looks for the session whose peer sent rec (the first record of
// datagram b) from a new address, and moves the session there.
func (t *dtlsTransport) migrate(from netip.AddrPort, rec record, first, b []byte, cands []*session) {
	scratch := make([]byte, len(first))
	var found *session
	for _, s := range cands {
		s.mu.Lock()
		keys := s.keys
		s.mu.Unlock()
		if keys == nil || rec.seq <= s.maxSeq.Load() {
			continue // a replay of an old record must not move the session
		}
		copy(scratch, first)                                                   // Decrypt works in place
		if _, err := keys.Decrypt(recordlayer.Header{}, scratch); err == nil { // the header is parsed from scratch
			found = s
			break
		}
	}
	if found == nil {
		t.stats.inputDrops.Add(1)
		return
	}
	t.mu.Lock()
	if t.closed || !found.up() {
		t.mu.Unlock()
		return
	}
	if old := t.sessions[from]; old != nil && old != found {
		t.mu.Unlock() // another session claimed the address meanwhile
		t.stats.inputDrops.Add(1)
		return
	}
	found.aliases = append(found.aliases, found.remote())
	if len(found.aliases) > maxAliases {
		if t.sessions[found.aliases[0]] == found {
			delete(t.sessions, found.aliases[0])
		}
		found.aliases = found.aliases[1:]
	}
	found.addr.Store(&from)
	found.maxSeq.Store(rec.seq)
	t.sessions[from] = found
	t.mu.Unlock()
	t.stats.migrations.Add(1)
	found.deliver(b)
}

// sessionUp is called by a session's goroutine once its handshake is
// done: it stops counting as a pending handshake and, if it was started
// to replace another session, takes that session's place.
func (t *dtlsTransport) sessionUp(s *session) {
	t.mu.Lock()
	if s.counted {
		s.counted = false
		t.handshakes--
	}
	old := s.replaces
	s.replaces = nil
	if old != nil {
		old.next = nil
		for a, x := range t.sessions {
			if x == old {
				t.sessions[a] = s
			}
		}
	}
	t.mu.Unlock()
	if old != nil {
		old.detached.Store(true) // its close_notify would only confuse the peer
		old.close()
	}
}

// forget unregisters a session whose goroutine is ending.
func (t *dtlsTransport) forget(s *session) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s.counted {
		s.counted = false
		t.handshakes--
	}
	for a, x := range t.sessions {
		if x == s {
			delete(t.sessions, a)
		}
	}
	if old := s.replaces; old != nil && old.next == s {
		old.next = nil
	}
	if s.next != nil {
		s.next.replaces = nil
		t.sessions[s.remote()] = s.next // the replacement carries on
	}
}

// noteSeq raises the highest record number seen from the session's
// address, which tells migrate a replayed record from a new address.
// The number comes from a header nobody has authenticated yet, so a jump
// beyond pion's replay window is believed only if the record opens under
// the peer's key: otherwise one spoofed record numbered 2⁴⁸−1 would make
// every genuine record from a new address look like a replay, and a NAT
// rebinding would no longer be followed. Within the window a spoofed
// number gains an attacker at most that many records of the peer's
// traffic.
func (s *session) noteSeq(rec record, first []byte) {
	cur := s.maxSeq.Load()
	if rec.seq > cur+replayWindow {
		s.mu.Lock()
		keys := s.keys
		s.mu.Unlock()
		if keys == nil {
			return
		}
		if _, err := keys.Decrypt(recordlayer.Header{}, bytes.Clone(first)); err != nil {
			return
		}
	}
	for cur < rec.seq && !s.maxSeq.CompareAndSwap(cur, rec.seq) {
		cur = s.maxSeq.Load()
	}
}
