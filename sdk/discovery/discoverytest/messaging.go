package discoverytest

import (
	"context"
	"slices"
	"sync"

	"github.com/tarzan-net/tarzan/sdk/discovery"
)

// Messaging is a Fake that also implements discovery.Messenger: Outbox
// returns what Send queued; Deliver calls are recorded.
type Messaging struct {
	*Fake

	mu        sync.Mutex
	outbox    []discovery.Message
	delivered []discovery.Message
	wake      chan struct{} // closed and replaced when outbox grows
}

var _ discovery.Messenger = (*Messaging)(nil)

// NewMessaging returns a messaging fake named "fake".
func NewMessaging() *Messaging { return &Messaging{Fake: New(), wake: make(chan struct{})} }

// Send queues messages for Outbox.
func (m *Messaging) Send(msgs ...discovery.Message) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, msg := range msgs {
		msg.Data = slices.Clone(msg.Data)
		m.outbox = append(m.outbox, msg)
	}
	close(m.wake)
	m.wake = make(chan struct{})
}

// Delivered returns a copy of every message Deliver was given, in order.
func (m *Messaging) Delivered() []discovery.Message {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.delivered)
}

func (m *Messaging) Outbox(ctx context.Context) ([]discovery.Message, error) {
	for {
		m.mu.Lock()
		if len(m.outbox) > 0 {
			out := m.outbox
			m.outbox = nil
			m.mu.Unlock()
			return out, nil
		}
		wake := m.wake
		m.mu.Unlock()
		m.Fake.mu.Lock()
		closed, fwake := m.Fake.closed, m.Fake.wake
		m.Fake.mu.Unlock()
		if closed {
			return nil, discovery.ErrClosed
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-wake:
		case <-fwake: // Close, or a proposal: look again
		}
	}
}

// Deliver records a deep copy: the caller may reuse the data.
func (m *Messaging) Deliver(msgs []discovery.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, msg := range msgs {
		msg.Data = slices.Clone(msg.Data)
		m.delivered = append(m.delivered, msg)
	}
	return nil
}
