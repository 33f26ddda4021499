package discoveryplugin

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tarzan-net/tarzan/sdk/discovery"
	"github.com/tarzan-net/tarzan/sdk/discovery/discoveryplugin/internal/discoverypb"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

// maxQueued bounds the messages Deliver holds for the child. The core
// calls Deliver from its receive path, so Deliver only queues; a
// forwarder sends the queue to the child in batches. Messages are
// datagrams: when the queue is full, or the child is down, they are
// dropped.
const maxQueued = 256

// ErrQueueFull is returned by Deliver when the child falls behind.
var ErrQueueFull = errors.New("discoveryplugin: deliver queue full; message dropped")

// messaging is the host side of discovery.Messenger, embedded in client.
type messaging struct {
	unsupported atomic.Bool // the child answered Unimplemented

	queue   chan discovery.Message
	dropped atomic.Uint64
}

func newMessaging() messaging {
	return messaging{queue: make(chan discovery.Message, maxQueued)}
}

var _ discovery.Messenger = (*client)(nil)

// Outbox waits for the child's next batch of messages. It survives a
// restart of the child like Next does, and returns discovery.ErrNoMessaging
// if the backend does not exchange messages.
func (c *client) Outbox(ctx context.Context) ([]discovery.Message, error) {
	if c.unsupported.Load() {
		return nil, discovery.ErrNoMessaging
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.closed, cancel)()
	for {
		rpc, err := c.rpc()
		if err == nil {
			var resp *discoverypb.Messages
			if resp, err = rpc.Outbox(ctx, &discoverypb.Empty{}); err == nil {
				return fromPB(resp), nil
			}
		}
		switch {
		case c.closed.Err() != nil, status.Code(err) == codes.FailedPrecondition:
			return nil, discovery.ErrClosed
		case status.Code(err) == codes.Unimplemented:
			c.unsupported.Store(true)
			return nil, discovery.ErrNoMessaging
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case errors.Is(err, pluginkit.ErrUnavailable), status.Code(err) == codes.Unavailable, status.Code(err) == codes.Canceled:
			select {
			case <-ctx.Done():
			case <-time.After(retryPause):
			}
		default:
			return nil, fmt.Errorf("discoveryplugin: outbox: %w", err)
		}
	}
}

// fromPB converts a batch from the child, skipping messages whose address
// does not parse (the core could not send them anyway).
func fromPB(resp *discoverypb.Messages) []discovery.Message {
	out := make([]discovery.Message, 0, len(resp.GetMessages()))
	for _, m := range resp.GetMessages() {
		ap, err := netip.ParseAddrPort(m.GetAddr())
		if err != nil || len(m.GetData()) > discovery.MaxMessage {
			continue
		}
		out = append(out, discovery.Message{Addr: ap, Transport: m.GetTransport(), Data: m.GetData()})
	}
	return out
}

// Deliver queues msgs for the child and returns at once. It returns
// discovery.ErrNoMessaging once the child has said it does not exchange
// messages, and ErrQueueFull when some were dropped.
func (c *client) Deliver(msgs []discovery.Message) error {
	switch {
	case c.closed.Err() != nil:
		return discovery.ErrClosed
	case c.unsupported.Load():
		return discovery.ErrNoMessaging
	}
	for i, m := range msgs {
		m.Data = slices.Clone(m.Data)
		select {
		case c.queue <- m:
		default:
			c.dropped.Add(uint64(len(msgs) - i))
			return ErrQueueFull
		}
	}
	return nil
}

// forward sends queued messages to the child until Close, one batch per
// call: whatever is queued when the previous call returns.
func (c *client) forward() {
	for {
		var batch []*discoverypb.Message
		select {
		case <-c.closed.Done():
			return
		case m := <-c.queue:
			batch = append(batch, toPB(m))
		}
	drain:
		for len(batch) < maxQueued {
			select {
			case m := <-c.queue:
				batch = append(batch, toPB(m))
			default:
				break drain
			}
		}
		if c.unsupported.Load() {
			continue
		}
		rpc, err := c.rpc()
		if err == nil {
			ctx, cancel := context.WithTimeout(c.closed, rpcTimeout)
			_, err = rpc.Deliver(ctx, &discoverypb.Messages{Messages: batch})
			cancel()
		}
		switch {
		case err == nil:
		case status.Code(err) == codes.Unimplemented:
			c.unsupported.Store(true)
			c.dropped.Add(uint64(len(batch)))
		default:
			// The child is restarting or refused them: datagrams are
			// best effort, so drop the batch rather than block.
			c.dropped.Add(uint64(len(batch)))
		}
	}
}

func toPB(m discovery.Message) *discoverypb.Message {
	return &discoverypb.Message{Addr: m.Addr.String(), Transport: m.Transport, Data: m.Data}
}

// DeliverDropped counts messages that never reached the child: refused by
// a full queue, or in a batch the child did not take.
func (c *client) DeliverDropped() uint64 { return c.dropped.Load() }
