// Package static is the bootstrap discovery backend: it proposes a fixed
// list of peers, from options or a file, and proposes it again from time
// to time so that peers that were down when the node started, or that
// were evicted, come back, and so that peers see this node's re-published
// descriptor (the core's probe carries it).
//
// The first re-proposal comes one interval after the first proposal; while
// the core admits nothing new, each later one waits twice as long as the
// one before, up to 32 intervals (quiet rounds: every proposal of a peer
// already in the view costs the two nodes a probe and two signatures, and
// an idle node woke for little else). A descriptor the core admits that
// this backend had not seen brings the next round back to one interval
// after the last.
//
// Options:
//
//	peers     comma-separated "host:port" IP literals ("192.0.2.1:7000,[2001:db8::1]:7000")
//	file      path of a bootstrap file (see below)
//	interval  the shortest wait before the list is proposed again (Go duration, default 30s)
//	stretch   whether quiet rounds stretch (default true); false proposes
//	          the list every interval, as tests that count probes need
//
// A bootstrap file has one entry per line: a "host:port" IP literal, or
// "desc <base64>" to propose a signed descriptor. '#' starts a comment;
// blank lines are ignored. A bad entry fails New with the file and line.
//
// The backend proposes and nothing more: the core checks every descriptor's
// signature and every peer's reachability before admitting it.
package static

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/sdk/discovery"
)

// Name is the backend's registered name.
const Name = "static"

// DefaultInterval is how often the list is proposed again by default.
const DefaultInterval = 30 * time.Second

// maxQuietShift caps the quiet rounds' doubling: at most 1<<maxQuietShift
// intervals between two proposals (16 minutes at the default interval,
// well inside a descriptor's half-life, when its owner re-publishes it).
const maxQuietShift = 5

// maxSeen bounds the admitted descriptors remembered as seen; past it the
// memory starts over (the next admissions then count as news once).
const maxSeen = 4096

// maxDescriptor bounds a descriptor in a bootstrap file (docs/PROTOCOL.md §2).
const maxDescriptor = 1024

// ErrNoHost is wrapped by errors for entries that are not IP literals.
var ErrNoHost = errors.New("want an IP literal host:port")

// Static proposes a fixed list of peers.
type Static struct {
	list     []discovery.Proposal
	interval time.Duration

	started chan struct{} // closed by Start
	closed  chan struct{} // closed by Close
	news    chan struct{} // capacity 1: Admitted saw a new descriptor

	mu        sync.Mutex
	isStarted bool
	isClosed  bool
	due       time.Time // when Next next hands out the list
	last      time.Time // when Next last handed it out
	shift     int       // the next wait is interval<<shift (quiet rounds double it)
	steady    bool      // stretch = false: every wait is one interval
	seen      map[[32]byte]struct{}
}

var _ discovery.Discovery = (*Static)(nil)

// New creates the backend from its options; it is a discovery.Factory.
func New(options map[string]string) (discovery.Discovery, error) {
	s := &Static{
		interval: DefaultInterval,
		started:  make(chan struct{}),
		closed:   make(chan struct{}),
		news:     make(chan struct{}, 1),
		seen:     make(map[[32]byte]struct{}),
	}
	seen := make(map[netip.AddrPort]bool)
	add := func(p discovery.Proposal) {
		if p.Descriptor == nil {
			if seen[p.Addr] {
				return
			}
			seen[p.Addr] = true
		}
		s.list = append(s.list, p)
	}
	for key, value := range options {
		switch key {
		case "peers":
			for entry := range strings.SplitSeq(value, ",") {
				entry = strings.TrimSpace(entry)
				if entry == "" {
					continue // tolerate "a,b," and spaces
				}
				ap, err := parseAddr(entry)
				if err != nil {
					return nil, fmt.Errorf("static discovery: option \"peers\": %w", err)
				}
				add(discovery.Proposal{Addr: ap})
			}
		case "file":
			if value == "" {
				return nil, errors.New("static discovery: option \"file\": empty path")
			}
		case "interval":
			d, err := time.ParseDuration(value)
			if err != nil {
				return nil, fmt.Errorf("static discovery: option \"interval\": %w", err)
			}
			if d <= 0 {
				return nil, fmt.Errorf("static discovery: option \"interval\": %s is not positive", value)
			}
			s.interval = d
		case "stretch":
			b, err := strconv.ParseBool(value)
			if err != nil {
				return nil, fmt.Errorf("static discovery: option \"stretch\": %q is not true or false", value)
			}
			s.steady = !b
		default:
			return nil, fmt.Errorf("static discovery: unknown option %q (want peers, file, interval, stretch)", key)
		}
	}
	// The file comes after "peers" whatever the map order, so that the
	// order of proposals does not depend on map iteration.
	if path := options["file"]; path != "" {
		ps, err := ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("static discovery: %w", err)
		}
		for _, p := range ps {
			add(p)
		}
	}
	return s, nil
}

// Name returns "static".
func (s *Static) Name() string { return Name }

// Start makes the list available to Next. self is not used: a static
// list has no one to pass it on to.
func (s *Static) Start(self []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.isClosed:
		return discovery.ErrClosed
	case s.isStarted:
		return errors.New("static discovery: already started")
	}
	s.isStarted = true
	s.due = time.Now()
	close(s.started)
	return nil
}

// Next returns the whole list at once after Start, again one interval
// later, and then after waits that double while nothing new is admitted
// (see the package doc). With an empty list it blocks until ctx ends or
// Close.
func (s *Static) Next(ctx context.Context) ([]discovery.Proposal, error) {
	select {
	case <-s.started:
	case <-s.closed:
		return nil, discovery.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	for {
		s.mu.Lock()
		if s.isClosed {
			s.mu.Unlock()
			return nil, discovery.ErrClosed
		}
		now := time.Now()
		wait := s.due.Sub(now)
		if wait <= 0 && len(s.list) > 0 {
			s.last = now
			s.due = now.Add(s.interval << s.shift)
			if !s.steady {
				s.shift = min(s.shift+1, maxQuietShift)
			}
			s.mu.Unlock()
			return clone(s.list), nil
		}
		s.mu.Unlock()
		if len(s.list) == 0 {
			wait = s.interval // nothing to propose, ever; just wait for the end
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-s.news:
			timer.Stop()
		case <-s.closed:
			timer.Stop()
			return nil, discovery.ErrClosed
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		}
	}
}

// Admitted notes news: a descriptor not seen before (a peer admitted for
// the first time, again after an eviction, or with a re-published
// descriptor) ends the quiet rounds, so the list is proposed again one
// interval after the last time. The list itself does not grow.
func (s *Static) Admitted(descriptors [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	news := false
	for _, d := range descriptors {
		k := sha256.Sum256(d)
		if _, ok := s.seen[k]; ok {
			continue
		}
		if len(s.seen) >= maxSeen {
			clear(s.seen)
		}
		s.seen[k] = struct{}{}
		news = true
	}
	if !news || s.shift == 0 {
		return nil
	}
	s.shift = 0
	if !s.last.IsZero() {
		s.due = s.last.Add(s.interval)
	}
	select {
	case s.news <- struct{}{}:
	default:
	}
	return nil
}

// Close unblocks Next, which then returns discovery.ErrClosed. It is safe
// to call more than once.
func (s *Static) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.isClosed {
		s.isClosed = true
		close(s.closed)
	}
	return nil
}

// clone copies the list so that the caller owns what it gets.
func clone(list []discovery.Proposal) []discovery.Proposal {
	out := make([]discovery.Proposal, len(list))
	for i, p := range list {
		out[i] = p
		if p.Descriptor != nil {
			out[i].Descriptor = append([]byte(nil), p.Descriptor...)
		}
	}
	return out
}

// parseAddr parses one "host:port" IP literal that can be contacted.
func parseAddr(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q: %w (%w)", s, ErrNoHost, err)
	}
	switch a := ap.Addr(); {
	case ap.Port() == 0:
		return netip.AddrPort{}, fmt.Errorf("%q: port 0 cannot be contacted", s)
	case a.IsUnspecified():
		return netip.AddrPort{}, fmt.Errorf("%q: the unspecified address cannot be contacted", s)
	case a.IsMulticast():
		return netip.AddrPort{}, fmt.Errorf("%q: a multicast address is not a peer", s)
	}
	return ap, nil
}
