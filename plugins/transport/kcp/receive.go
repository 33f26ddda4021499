package kcp

// The receive loop (one goroutine per transport, started by Listen) reads
// the socket and routes every packet by source address and KCP
// conversation id (conv):
//
//  1. a known address, same conv (or a parity packet, which has none):
//     to that peer's session;
//  2. a known address, another conv, on the first segment of a new
//     session (PUSH with sn 0):
//     - if the session there has never heard its peer, both sides opened
//     at once: the lower conv wins and the session is replaced;
//     - if it has, the peer may have restarted, or someone spoofs its
//     address: KCP authenticates nothing, and one spoofed opener with a
//     zero window used to replace a live session and stall the link
//     until both sides' sessions expired. The new session is a
//     *candidate* instead, run beside the live one: it hears its conv,
//     and its messages go up (the core's link layer authenticates them),
//     while writes stay on the live session. The candidate replaces it
//     only once the live session has heard nothing for replace_after_ms
//     and the candidate has heard since (a restarted peer no longer
//     speaks the old conv; a live one, which a spoofer cannot silence,
//     keeps its session). A candidate that stays silent for
//     idle_timeout_ms is closed; a newer opener replaces the candidate;
//  3. an unknown address opening a new session: a new peer with its conv;
//  4. anything else is dropped and counted. A session that only hears
//     silence is closed by the janitor, so a peer that lost its state
//     gets a fresh session after idle_timeout_ms at worst.
//
// Packets are copied before they are queued, so the loop reuses one buffer.

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"time"
)

const (
	fecTypeData   = 0xf1
	fecTypeParity = 0xf2
	fecHeader     = 8 // seqid(4) type(2) size(2) on data packets
	cmdPush       = 81
)

// segment is the first KCP segment header of a packet.
type segment struct {
	conv uint32
	cmd  byte
	sn   uint32
}

// parseSegment finds the first segment of a packet, behind the FEC header
// if there is one. Parity packets carry none.
func parseSegment(b []byte) (segment, bool) {
	if len(b) >= 6 {
		switch binary.LittleEndian.Uint16(b[4:]) {
		case fecTypeParity:
			return segment{}, false
		case fecTypeData:
			if len(b) < fecHeader {
				return segment{}, false // a 6- or 7-byte packet claiming FEC data
			}
			b = b[fecHeader:]
		}
	}
	if len(b) < SegmentOverhead {
		return segment{}, false
	}
	return segment{conv: binary.LittleEndian.Uint32(b), cmd: b[4], sn: binary.LittleEndian.Uint32(b[12:])}, true
}

func (t *kcpTransport) receive(conn *net.UDPConn) {
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

func (t *kcpTransport) route(from netip.AddrPort, b []byte) {
	seg, hasSeg := parseSegment(b)
	opens := hasSeg && seg.cmd == cmdPush && seg.sn == 0

	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	p := t.peers[from]
	if c := t.cands[from]; p == nil && c != nil { // the live session expired
		delete(t.cands, from)
		t.peers[from], p = c, c
	}
	var old *peer
	cand := false // p is the candidate at from
	switch {
	case p != nil && hasSeg && seg.conv != p.conv:
		if c := t.cands[from]; c != nil && c.conv == seg.conv {
			p, cand = c, true // the candidate's own traffic
			break
		}
		if !opens || (!p.heard.Load() && seg.conv > p.conv) {
			t.mu.Unlock()
			t.stats.inputDrops.Add(1)
			return
		}
		if !p.heard.Load() || t.opts.replaceAfter == 0 { // simultaneous open
			old, p = p, t.newPeer(from, seg.conv)
			t.peers[from] = p
			t.stats.replaced.Add(1)
			break
		}
		old = t.cands[from] // a newer opener replaces the candidate
		p, cand = t.newPeer(from, seg.conv), true
		t.cands[from] = p
		t.stats.candidates.Add(1)
	case p == nil && opens:
		p = t.newPeer(from, seg.conv)
		t.peers[from] = p
	case p == nil:
		t.mu.Unlock()
		t.stats.inputDrops.Add(1)
		return
	}
	t.mu.Unlock()
	if old != nil {
		old.close()
	}
	if hasSeg {
		p.heard.Store(true)
	}
	p.deliver(b)
	if cand {
		t.mu.Lock()
		replaced := t.promoteLocked(from, time.Now())
		t.mu.Unlock()
		if replaced != nil {
			replaced.close()
		}
	}
}

// unackedReplace is how long a write on the live session may go
// unanswered before a candidate that has heard since replaces it
// (promoteLocked).
const unackedReplace = time.Second

// promoteLocked makes the candidate at addr the session there if the live
// session has been silent for replace_after_ms (or a write on it has gone
// unanswered for unackedReplace) and the candidate has
// heard since; it returns the replaced session for the caller to close
// outside t.mu. Caller holds t.mu.
func (t *kcpTransport) promoteLocked(addr netip.AddrPort, now time.Time) *peer {
	c := t.cands[addr]
	if c == nil || !c.heard.Load() {
		return nil
	}
	p := t.peers[addr]
	limit := t.opts.replaceAfter
	if p != nil && p.unansweredFor(now) >= unackedReplace {
		// The live session has written and heard nothing back for a
		// second: a peer that lost its state (its plugin or node
		// restarted) no longer answers this conv, while a spoofer off the
		// path cannot silence a live peer's acknowledgements. Waiting
		// replace_after_ms here kept a restarted relay unreachable 15 s.
		limit = 0
	}
	if p != nil && (now.Sub(p.lastHeard()) < limit || !c.lastHeard().After(p.lastHeard())) {
		return nil
	}
	delete(t.cands, addr)
	t.peers[addr] = c
	if p != nil {
		t.stats.replaced.Add(1)
	}
	return p
}
