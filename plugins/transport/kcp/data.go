package kcp

// The data path.
//
// Send (WriteBatch, any number of goroutines):
//  1. a datagram larger than one KCP segment carries is refused (KCP
//     would split it into several messages);
//  2. the destination's peer is looked up or created (a new session with
//     a random conv);
//  3. the datagram is copied into the peer's send queue (at most "queue"
//     datagrams; beyond that it is dropped and counted) and WriteBatch
//     moves on: it never waits for the network;
//  4. the peer's sendLoop writes the queue into KCP in batches, waiting
//     while the send window is full, but never longer than max_delay_ms;
//     kcp-go adds FEC parity and sends.
//
// Receive (see receive.go for routing):
//  1. kcp-go reassembles, recovers (FEC) and orders messages per session;
//  2. each peer's readLoop reads whole messages into pooled buffers and
//     queues them on t.rx (blocking while it is full, which closes the KCP
//     receive window: back-pressure, not loss);
//  3. ReadBatch waits for one datagram, then takes whatever else is ready,
//     up to len(pkts), copying each into the caller's buffer.

import (
	"fmt"
	"net/netip"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

func (t *kcpTransport) listening() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return transport.ErrClosed
	case t.conn == nil:
		return errNotListening
	}
	return nil
}

func (t *kcpTransport) ReadBatch(pkts []transport.Packet) (int, error) {
	if err := t.listening(); err != nil {
		return 0, err
	}
	return t.rx.Read(pkts, t.done)
}

func (t *kcpTransport) WriteBatch(pkts []transport.Packet) error {
	if err := t.listening(); err != nil {
		return err
	}
	maxN := t.opts.maxPayload()
	var failed int
	var firstErr error
	fail := func(err error) {
		failed++
		if firstErr == nil {
			firstErr = err
		}
	}
	for i := range pkts {
		pk := &pkts[i]
		if pk.N > maxN {
			t.stats.oversize.Add(1)
			fail(fmt.Errorf("datagram of %d bytes exceeds %d", pk.N, maxN))
			continue
		}
		addr := unmap(pk.Addr)
		if !addr.IsValid() || addr.Port() == 0 || addr.Addr().IsUnspecified() {
			fail(fmt.Errorf("invalid destination %v", pk.Addr))
			continue
		}
		p, err := t.peerFor(addr)
		if err != nil {
			return err // closed
		}
		p.enqueue(pk.Buf[:pk.N])
	}
	if failed > 0 {
		return fmt.Errorf("kcp: %d of %d datagrams not sent: %w", failed, len(pkts), firstErr)
	}
	return nil
}

func (t *kcpTransport) peerFor(addr netip.AddrPort) (*peer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, transport.ErrClosed
	}
	if p := t.peers[addr]; p != nil {
		return p, nil
	}
	p := t.newPeer(addr, 0)
	t.peers[addr] = p
	return p, nil
}
