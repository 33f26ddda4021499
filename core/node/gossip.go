package node

import (
	"context"
	"errors"
	"time"

	"github.com/tarzan-net/tarzan/core/link"
	"github.com/tarzan-net/tarzan/sdk/discovery"
)

// Discovery backends that gossip (discovery.Messenger) talk to each other
// through the node: the core sends their messages in fixed-size frames of
// type 6 and delivers the ones that arrive. The core does not interpret
// them; whatever a backend learns still only becomes a proposal.

func (n *Node) messenger() (discovery.Messenger, bool) {
	m, ok := n.opts.Discovery.(discovery.Messenger)
	return m, ok
}

// outboxLoop sends the backend's messages.
func (n *Node) outboxLoop(ctx context.Context) {
	m, ok := n.messenger()
	if !ok {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	backoff := 50 * time.Millisecond
	for !n.stopped() {
		msgs, err := m.Outbox(ctx)
		if err != nil {
			if n.stopped() || ctx.Err() != nil || errors.Is(err, discovery.ErrClosed) || errors.Is(err, discovery.ErrNoMessaging) {
				return
			}
			n.limiter.Warn(n.log, "outbox", "discovery plugin outbox failed; retrying", "err", err)
			n.sleep(backoff)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		for _, msg := range msgs {
			frame, err := link.EncodeGossip(msg.Data)
			if err != nil {
				n.stats.inc(DropGossip)
				continue
			}
			if msg.Transport != "" {
				if ep, ok := n.endpointNamed(msg.Transport); ok {
					n.stats.inc(EventGossipOut)
					n.sendRaw(peerAddr{ep: ep, ap: msg.Addr}, frame)
				}
				continue
			}
			// No transport named (a bootstrap address, say): like a probe
			// of a bare address, try it on each of ours.
			for _, ep := range n.eps {
				n.stats.inc(EventGossipOut)
				n.sendRaw(peerAddr{ep: ep.idx, ap: msg.Addr}, frame)
			}
		}
	}
}

// handleGossip passes a discovery message to the backend.
func (n *Node) handleGossip(src peerAddr, frame []byte) {
	m, ok := n.messenger()
	if !ok {
		n.stats.inc(DropGossip)
		return
	}
	data, err := link.DecodeGossip(frame)
	if err != nil {
		n.stats.inc(DropMalformedFrame)
		return
	}
	n.stats.inc(EventGossipIn)
	if err := m.Deliver([]discovery.Message{{Addr: src.ap, Transport: n.eps[src.ep].name, Data: data}}); err != nil {
		n.stats.inc(DropGossip)
		n.limiter.Debug(n.log, "deliver", "discovery plugin refused a message", "err", err)
	}
}
