// Package static is the bootstrap discovery backend: it proposes a fixed
// list of peers, from options or a file, and proposes it again every
// interval so that peers that were down when the node started come back.
//
// Options:
//
//	peers     comma-separated "host:port" IP literals ("192.0.2.1:7000,[2001:db8::1]:7000")
//	file      path of a bootstrap file (see below)
//	interval  how often the list is proposed again (Go duration, default 30s)
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
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/sdk/discovery"
)

// Name is the backend's registered name.
const Name = "static"

// DefaultInterval is how often the list is proposed again by default.
const DefaultInterval = 30 * time.Second

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

	mu        sync.Mutex
	isStarted bool
	isClosed  bool
	due       time.Time // when Next next hands out the list
}

var _ discovery.Discovery = (*Static)(nil)

// New creates the backend from its options; it is a discovery.Factory.
func New(options map[string]string) (discovery.Discovery, error) {
	s := &Static{
		interval: DefaultInterval,
		started:  make(chan struct{}),
		closed:   make(chan struct{}),
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
		default:
			return nil, fmt.Errorf("static discovery: unknown option %q (want peers, file, interval)", key)
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

// Next returns the whole list at once after Start and again every interval.
// With an empty list it blocks until ctx ends or Close.
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
			s.due = now.Add(s.interval)
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
		case <-s.closed:
			timer.Stop()
			return nil, discovery.ErrClosed
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		}
	}
}

// Admitted does nothing: a static list does not grow.
func (s *Static) Admitted(descriptors [][]byte) error { return nil }

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
