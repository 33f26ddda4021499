package host

import (
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/sdk/cover"
)

// swapCover is the cover policy the node, the loop cover and the control
// API hold: a reload (SIGHUP) that changes [cover]'s plugin or options
// opens the new policy and swaps it in here, without the node noticing
// more than a new answer at its next tick (and, read after that tick, a
// new interval: core/node/cover.go).
//
// A Tick runs under the read lock, so when swap returns no Tick is still
// inside the old policy and the caller may close it at once.
type swapCover struct {
	mu sync.RWMutex
	p  cover.Policy
}

func newSwapCover(p cover.Policy) cover.Policy {
	s := &swapCover{p: p}
	if _, ok := p.(cover.Looper); ok {
		// Loop cover reads Loops once, when it is made: it keeps the
		// first policy's rate (a changed rate needs a restart: reload.go).
		return &swapLooper{swapCover: s, loops: p.(cover.Looper).Loops()}
	}
	return s
}

// current is the policy in force.
func (s *swapCover) current() cover.Policy {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.p
}

// swap puts p in force and returns the policy it replaced (the caller
// closes it).
func (s *swapCover) swap(p cover.Policy) cover.Policy {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.p
	s.p = p
	return old
}

func (s *swapCover) Name() string            { return s.current().Name() }
func (s *swapCover) Interval() time.Duration { return s.current().Interval() }
func (s *swapCover) Close() error            { return s.current().Close() }

func (s *swapCover) Tick(now time.Time, links []cover.LinkStats) ([]cover.Target, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.p.Tick(now, links)
}

// swapLooper is a swapCover whose first policy asked for loop cover.
type swapLooper struct {
	*swapCover
	loops cover.Loops
}

func (s *swapLooper) Loops() cover.Loops { return s.loops }

// swapper is what reload.go and the plugin list need of either type.
type swapper interface {
	current() cover.Policy
	swap(cover.Policy) cover.Policy
}

// unwrapPlugin returns the plugin behind a swapCover (for its process
// statistics), or v itself.
func unwrapPlugin(v any) any {
	if s, ok := v.(swapper); ok {
		return s.current()
	}
	return v
}
