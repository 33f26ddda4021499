// Package discoverytest provides a fake discovery.Discovery for tests of
// the core and of the discoveryplugin glue.
//
//	d := discoverytest.New()
//	d.Propose(discovery.Proposal{Addr: addr})   // Next returns it
//	... the core calls d.Admitted(descs) ...
//	calls := d.AdmittedCalls()
//
// NewMessaging returns a Fake that is also a discovery.Messenger: Send
// queues messages for Outbox, Delivered lists what Deliver was given.
package discoverytest

import (
	"context"
	"slices"
	"sync"

	"github.com/tarzan-net/tarzan/sdk/discovery"
)

// Fake is a discovery.Discovery driven by the test: Next returns what
// Propose queued; Start and Admitted calls are recorded.
type Fake struct {
	mu       sync.Mutex
	queue    []discovery.Proposal
	self     []byte
	started  bool
	admitted [][][]byte
	wake     chan struct{} // closed and replaced when queue grows or on Close
	closed   bool
}

// New returns a fake named "fake".
func New() *Fake { return &Fake{wake: make(chan struct{})} }

// Factory makes a new Fake per call, for Serve in tests.
func Factory(map[string]string) (discovery.Discovery, error) { return New(), nil }

// Propose queues proposals for Next.
func (f *Fake) Propose(ps ...discovery.Proposal) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range ps {
		p.Descriptor = slices.Clone(p.Descriptor)
		f.queue = append(f.queue, p)
	}
	f.wakeLocked()
}

func (f *Fake) wakeLocked() {
	close(f.wake)
	f.wake = make(chan struct{})
}

// AdmittedCalls returns a copy of every Admitted call's argument, in order.
func (f *Fake) AdmittedCalls() [][][]byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.admitted)
}

// Self returns what Start was called with, and whether it was.
func (f *Fake) Self() ([]byte, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.self, f.started
}

func (f *Fake) Name() string { return "fake" }

func (f *Fake) Start(self []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.self, f.started = slices.Clone(self), true
	return nil
}

func (f *Fake) Next(ctx context.Context) ([]discovery.Proposal, error) {
	for {
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			return nil, discovery.ErrClosed
		}
		if len(f.queue) > 0 {
			out := f.queue
			f.queue = nil
			f.mu.Unlock()
			return out, nil
		}
		wake := f.wake
		f.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wake:
		}
	}
}

// Admitted records a deep copy: the caller may reuse the slices.
func (f *Fake) Admitted(descriptors [][]byte) error {
	cp := make([][]byte, len(descriptors))
	for i, d := range descriptors {
		cp[i] = slices.Clone(d)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.admitted = append(f.admitted, cp)
	return nil
}

func (f *Fake) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		f.wakeLocked()
	}
	return nil
}
