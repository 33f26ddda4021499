package discoverytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/discovery"
)

// Bounds the core needs a backend to keep.
const (
	// MaxDescriptor is the largest descriptor the core accepts
	// (docs/PROTOCOL.md; core/descriptor.MaxSize).
	MaxDescriptor = 1024
	// MaxProposals bounds one Next's batch: the core verifies every
	// descriptor (a signature check each) before it does anything else.
	MaxProposals = 1024
	// MaxNextPerSecond bounds how often Next may return: it must block
	// until there is something new, not hand back the same or nothing in
	// a loop (the core would spin with it). A backend that re-proposes
	// its list on an interval stays far below.
	MaxNextPerSecond = 50
	// MaxRepliesToStranger is how many messages a Messenger may send to
	// an address it only heard junk from: its source is unauthenticated,
	// so each reply is traffic an attacker aims at a third party.
	MaxRepliesToStranger = 4
	// callBound is how long Next may take after its context ended or the
	// backend was closed, and how long Deliver or Start may take.
	callBound = 2 * time.Second
)

// Options tell Run what it cannot know about a backend.
type Options struct {
	// Self is the descriptor Start is given (default: 200 bytes of 0x01,
	// which is not a valid descriptor; give a real one if the backend
	// checks).
	Self []byte
	// Verify, when set, is the core's check of a descriptor
	// (descriptor.Parse at the current time); every descriptor the backend
	// proposes must then pass it.
	Verify func(descriptor []byte) error
}

// Run checks what the core relies on from every backend newBackend
// creates: a name; Next blocks until there is something to propose (no
// empty batches, at most MaxNextPerSecond returns a second) and returns
// within callBound once its context ends or the backend is closed, with
// ErrClosed after Close; proposals are well-formed (a valid address or a
// descriptor of at most MaxDescriptor bytes, at most MaxProposals a
// batch). A backend that implements discovery.Messenger is also fed
// junk from many unknown addresses (as anyone on the network can send
// it): it must not propose those addresses or the junk, must not answer
// any of them more than MaxRepliesToStranger times, and every message it
// sends must fit in MaxMessage. With Options.Verify, every descriptor it
// proposes must verify. It does not judge what a backend finds; its own
// tests do.
func Run(t *testing.T, newBackend func(t *testing.T) discovery.Discovery, opts Options) {
	if opts.Self == nil {
		opts.Self = bytes.Repeat([]byte{1}, 200)
	}
	s := suite{newBackend: newBackend, opts: opts}
	t.Run("identity", s.identity)
	t.Run("proposals", s.proposals)
	t.Run("next honours its context", s.context)
	t.Run("close unblocks next", s.close)
	t.Run("hostile messages", s.hostile)
}

type suite struct {
	newBackend func(t *testing.T) discovery.Discovery
	opts       Options
}

// started makes a backend, starts it and closes it at the end.
func (s suite) started(t *testing.T) discovery.Discovery {
	t.Helper()
	d := s.newBackend(t)
	t.Cleanup(func() { d.Close() })
	errc := make(chan error, 1)
	go func() { errc <- d.Start(s.opts.Self) }()
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
	case <-time.After(callBound):
		t.Fatalf("Start did not return within %v", callBound)
	}
	return d
}

func (s suite) identity(t *testing.T) {
	d := s.newBackend(t)
	defer d.Close()
	if d.Name() == "" {
		t.Error("Name is empty")
	}
}

// next calls Next with ctx and fails the check if it does not return
// within callBound of ctx's end.
func next(t *testing.T, d discovery.Discovery, ctx context.Context) ([]discovery.Proposal, error) {
	t.Helper()
	type result struct {
		ps  []discovery.Proposal
		err error
	}
	done := make(chan result, 1)
	go func() {
		ps, err := d.Next(ctx)
		done <- result{ps, err}
	}()
	select {
	case r := <-done:
		return r.ps, r.err
	case <-ctx.Done():
	}
	select {
	case r := <-done:
		return r.ps, r.err
	case <-time.After(callBound):
		t.Fatalf("Next did not return within %v of its context ending: it must watch ctx", callBound)
		return nil, nil
	}
}

// collect calls Next until for has passed and checks every batch.
// deadlineSlack is how close to collect's deadline an error from Next is
// taken to be that deadline seen first by the plugin's end.
const deadlineSlack = 200 * time.Millisecond

func (s suite) collect(t *testing.T, d discovery.Discovery, dur time.Duration) []discovery.Proposal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	var all []discovery.Proposal
	calls := 0
	for ctx.Err() == nil {
		ps, err := next(t, d, ctx)
		if err != nil {
			// Out of process the plugin's side sees the deadline too (gRPC
			// sends it along) and may end the call a moment before this
			// side's timer fires, so an error within a short margin of the
			// deadline is the deadline, not the plugin's fault.
			if dl, _ := ctx.Deadline(); ctx.Err() != nil || time.Until(dl) < deadlineSlack {
				break
			}
			t.Fatalf("Next: %v", err)
		}
		calls++
		if len(ps) == 0 {
			t.Fatalf("Next returned no proposals and no error: it must block until it has some")
		}
		if len(ps) > MaxProposals {
			t.Fatalf("Next returned %d proposals in one batch; at most %d", len(ps), MaxProposals)
		}
		for _, p := range ps {
			if err := s.wellFormed(p); err != nil {
				t.Fatalf("proposal %+v: %v", brief(p), err)
			}
		}
		all = append(all, ps...)
	}
	if limit := int(MaxNextPerSecond * dur.Seconds()); calls > limit {
		t.Fatalf("Next returned %d times in %v (at most %d): it must block until there is something new", calls, dur, limit)
	}
	return all
}

// brief shortens a proposal for a message.
func brief(p discovery.Proposal) string {
	return fmt.Sprintf("{Addr:%v Transport:%q Descriptor: %d bytes}", p.Addr, p.Transport, len(p.Descriptor))
}

func (s suite) wellFormed(p discovery.Proposal) error {
	switch {
	case len(p.Descriptor) == 0 && !p.Addr.IsValid():
		return errors.New("neither a descriptor nor an address")
	case len(p.Descriptor) > MaxDescriptor:
		return fmt.Errorf("descriptor of %d bytes; at most %d", len(p.Descriptor), MaxDescriptor)
	case p.Addr.IsValid() && (p.Addr.Port() == 0 || p.Addr.Addr().IsUnspecified()):
		return fmt.Errorf("address %v cannot be reached", p.Addr)
	case len(p.Transport) > 32:
		return fmt.Errorf("transport name of %d bytes; at most 32", len(p.Transport))
	}
	if s.opts.Verify != nil && len(p.Descriptor) > 0 {
		if err := s.opts.Verify(p.Descriptor); err != nil {
			return fmt.Errorf("proposed a descriptor that does not verify (forged or corrupt): %v", err)
		}
	}
	return nil
}

func (s suite) proposals(t *testing.T) {
	d := s.started(t)
	s.collect(t, d, time.Second)
}

func (s suite) context(t *testing.T) {
	d := s.started(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Whatever is queued may come first; then the error must.
	for i := 0; ; i++ {
		ps, err := next(t, d, ctx)
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Next with a cancelled context: %v; want context.Canceled", err)
			}
			return
		}
		if i == 100 {
			t.Fatalf("Next with a cancelled context returned proposals 100 times; want ctx.Err()")
		}
		_ = ps
	}
}

func (s suite) close(t *testing.T) {
	d := s.started(t)
	ended := make(chan error, 1)
	go func() {
		for {
			if _, err := d.Next(context.Background()); err != nil {
				ended <- err
				return
			}
		}
	}()
	time.Sleep(100 * time.Millisecond) // let Next block
	if err := d.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case err := <-ended:
		if !errors.Is(err, discovery.ErrClosed) {
			t.Errorf("Next after Close: %v; want discovery.ErrClosed", err)
		}
	case <-time.After(callBound):
		t.Fatalf("a blocked Next did not return within %v of Close", callBound)
	}
	ctx, cancel := context.WithTimeout(context.Background(), callBound)
	defer cancel()
	if _, err := next(t, d, ctx); !errors.Is(err, discovery.ErrClosed) {
		t.Errorf("Next after Close: %v; want discovery.ErrClosed", err)
	}
	d.Close() // a second Close must not hang or panic
}

// hostile feeds a Messenger junk from many unknown addresses.
func (s suite) hostile(t *testing.T) {
	d := s.started(t)
	m, ok := d.(discovery.Messenger)
	if !ok {
		t.Skip("the backend exchanges no messages (no discovery.Messenger)")
	}
	// Pull the outbox as the core does, and count what goes where.
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	sentTo := map[netip.AddrPort]int{}
	var outErr error
	pulled := make(chan struct{})
	go func() {
		defer close(pulled)
		for {
			msgs, err := m.Outbox(ctx)
			if err != nil {
				return
			}
			mu.Lock()
			for _, msg := range msgs {
				sentTo[msg.Addr]++
				if len(msg.Data) > discovery.MaxMessage && outErr == nil {
					outErr = fmt.Errorf("sent a message of %d bytes to %v; at most %d", len(msg.Data), msg.Addr, discovery.MaxMessage)
				}
				if !msg.Addr.IsValid() && outErr == nil {
					outErr = fmt.Errorf("sent a message to the invalid address %v", msg.Addr)
				}
			}
			mu.Unlock()
		}
	}()
	defer func() { cancel(); <-pulled }()

	rng := rand.New(rand.NewPCG(1, 2))
	strangers := map[netip.AddrPort]bool{}
	var junk [][]byte
	for batch := range 16 {
		msgs := make([]discovery.Message, 16)
		for i := range msgs {
			addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 77, byte(batch), byte(i + 1)}), uint16(20000+batch*16+i))
			size := []int{0, 1, 10, 64, 300, 1000, discovery.MaxMessage}[rng.IntN(7)]
			data := make([]byte, size)
			for j := range data {
				data[j] = byte(rng.Uint32())
			}
			if size > 1 && i%2 == 0 {
				data[0] = 1 // a plausible version byte
			}
			msgs[i] = discovery.Message{Addr: addr, Data: data}
			strangers[addr] = true
			junk = append(junk, data)
		}
		done := make(chan error, 1)
		go func() { done <- m.Deliver(msgs) }()
		select {
		case <-done: // an error is allowed: junk is junk
		case <-time.After(callBound):
			t.Fatalf("Deliver of 16 junk messages did not return within %v", callBound)
		}
	}
	for _, p := range s.collect(t, d, 500*time.Millisecond) {
		if strangers[p.Addr] {
			t.Fatalf("proposed %v, an address it only got junk from: a message's source is unauthenticated, "+
				"so proposing it lets anyone point the node at a third party", p.Addr)
		}
		for _, j := range junk {
			if len(j) >= 10 && bytes.Contains(p.Descriptor, j) {
				t.Fatalf("proposed a descriptor made of junk it was sent (%d bytes): descriptors from the "+
					"network must be verified before they are proposed", len(p.Descriptor))
			}
		}
	}
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if outErr != nil {
		t.Fatal(outErr)
	}
	for a, n := range sentTo {
		if strangers[a] && n > MaxRepliesToStranger {
			t.Fatalf("sent %d messages to %v, which only sent junk (at most %d): each is traffic an attacker "+
				"aims at whoever owns that address", n, a, MaxRepliesToStranger)
		}
	}
}
