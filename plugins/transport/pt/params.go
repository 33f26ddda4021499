package pt

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// Peers' PT arguments learned from descriptors (SetPeerParams).
//
// The core hands them over before it first probes a peer it learned of,
// so they come from descriptors that are signed but not yet proven: anyone
// can sign a descriptor naming someone else's address with a wrong cert.
// So each address keeps a few candidates instead of the latest one: the
// current candidate is dialled; a dial that fails moves on to the next;
// one whose dial succeeded (the PT's handshake authenticated the server:
// obfs4's cert) is *proven* and is never displaced by a newcomer, only by
// failing. A peer that changed its cert is dialled with the old one, that
// fails, and the new one is tried next.

const (
	maxCandidates = 4    // argument sets kept per address
	maxParamAddrs = 4096 // addresses with learned arguments
)

var errTooManyParams = errors.New("pt: too many peers with arguments; refusing more")

// argSet is one address's candidates.
type argSet struct {
	cands  []string // distinct, oldest first
	cur    int      // the one dialled next
	proven bool     // cands[cur] carried a successful dial
}

// SetPeerParams records PT arguments for the peer at addr (from its
// descriptor) as a candidate; see the comment at the top of params.go.
func (t *Transport) SetPeerParams(addr netip.AddrPort, args string) error {
	if _, err := splitArgs(args); err != nil {
		return fmt.Errorf("pt: arguments for %v: %w", addr, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.params[addr]
	if s == nil {
		if len(t.params) >= maxParamAddrs {
			t.stats.paramsRefused.Add(1)
			return errTooManyParams
		}
		s = &argSet{}
		t.params[addr] = s
	}
	s.add(args)
	return nil
}

func (s *argSet) add(args string) {
	if slices.Contains(s.cands, args) {
		return
	}
	if len(s.cands) < maxCandidates {
		s.cands = append(s.cands, args)
		return
	}
	// Full: replace the oldest that is not the current one (a proven
	// current one stays; an unproven one is being tried).
	victim := 0
	if victim == s.cur {
		victim = 1
	}
	s.cands = append(s.cands[:victim], s.cands[victim+1:]...)
	if s.cur > victim {
		s.cur--
	}
	s.cands = append(s.cands, args)
}

// learned returns the candidate to dial for addr, if any.
func (t *Transport) learned(addr netip.AddrPort) (string, bool) {
	s := t.params[addr]
	if s == nil || len(s.cands) == 0 {
		return "", false
	}
	return s.cands[s.cur], true
}

// dialed records how a dial of addr with args went: success proves args,
// failure moves on to the next candidate.
func (t *Transport) dialed(addr netip.AddrPort, args string, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.params[addr]
	if s == nil || len(s.cands) == 0 || s.cands[s.cur] != args {
		return
	}
	if ok {
		s.proven = true
		return
	}
	s.proven = false
	if len(s.cands) > 1 {
		s.cur = (s.cur + 1) % len(s.cands)
		t.stats.paramsRotated.Add(1)
	}
}
