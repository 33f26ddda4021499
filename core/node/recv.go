package node

// Receive path. Every goroutine kind of the engine is numbered in
// node.go's package comment; a frame coming in passes only one:
//
//  1. recvLoop (one per transport) reads a batch of frames into buffers
//     it owns and, for each, handleFrame demultiplexes on the clear frame
//     type: probes and proofs to admission (admit.go), gossip to the
//     discovery backend (gossip.go), handshakes to links.go;
//  2. a data frame is authenticated and decrypted with the session its
//     receiver index names into a pooled frameBuf, where the payload sits
//     at the place of the frame's ciphertext; the link's address follows
//     an authenticated roam, and handlePayload dispatches on the payload
//     kind: CREATE/CREATED/DESTROY (relay.go, lifecycle.go), forward and
//     backward relay cells (relay.go), padding counted;
//  3. still on this goroutine, a cell for one of our tunnels is opened
//     (tunnel.go handleBackward) and handed to the service that built it
//     (TunnelEvents.Data, Pong), a DATA cell at a last hop to the exit
//     handler (ExitHandler.ExitData), and a relayed cell, its layer and
//     link header changed in place, goes out in the same buffer through
//     send.go's path (sealed in place: no copy between the two links),
//     and the loop takes a fresh buffer. Other handlers must copy what
//     they keep: the buffer is reused for the next frame.
//  4. while it handles a batch the loop corks the writers (send.go):
//     what the batch makes is written at its end, by this goroutine, in
//     one WriteBatch (no wake-up of the writer goroutine), and the
//     services' OnBatchEnd work runs (ipservice hands the adapters what
//     the batch delivered).

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/tarzan-net/tarzan/core/link"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// recvLoop reads frame batches and dispatches each frame. It owns the
// receive buffers and the frameBuf the next data frame is opened into;
// handlers that do not take it over must copy what they keep.
func (n *Node) recvLoop(ep *endpoint) {
	const bufSize = link.FrameSize + 64 // room to notice oversize datagrams
	pkts := make([]transport.Packet, transport.BatchSize)
	for i := range pkts {
		pkts[i].Buf = make([]byte, bufSize)
	}
	buf := getBuf() // the next data frame is opened into it
	defer func() { putBuf(buf) }()
	backoff := 10 * time.Millisecond
	for {
		for i := range pkts {
			pkts[i].Buf = pkts[i].Buf[:cap(pkts[i].Buf)]
		}
		k, err := ep.tr.ReadBatch(pkts)
		if err != nil {
			if n.stopped() || errors.Is(err, transport.ErrClosed) {
				return
			}
			n.stats.inc(EventTransportErrs)
			n.limiter.Warn(n.log, "read-"+ep.name, "transport read failed; retrying", "transport", ep.name, "err", err)
			n.sleep(backoff)
			backoff = min(backoff*2, time.Second)
			continue
		}
		backoff = 10 * time.Millisecond
		n.stats.add(EventFramesIn, uint64(k))
		n.cork(k)
		for i := 0; i < k; i++ {
			if n.handleFrame(peerAddr{ep: ep.idx, ap: pkts[i].Addr}, pkts[i].Buf[:pkts[i].N], buf) {
				buf = getBuf() // relayed: the frame went on in it
			}
		}
		n.uncork(k)
	}
}

// handleFrame dispatches one received frame. A data frame is opened into
// buf; it reports whether a handler took buf over (a relayed cell leaves
// in it), in which case the caller needs another.
func (n *Node) handleFrame(src peerAddr, frame []byte, buf *frameBuf) (taken bool) {
	typ, idx, err := link.Header(frame)
	if err != nil {
		n.stats.inc(DropMalformedFrame)
		return false
	}
	switch typ {
	case link.TypeProbe:
		n.handleProbe(src, frame)
	case link.TypeProof:
		n.handleProof(src, frame)
	case link.TypeGossip:
		n.handleGossip(src, frame)
	case link.TypeHandshakeInit:
		n.handleInit(src, frame)
	case link.TypeHandshakeResp:
		n.handleResp(src, idx, frame)
	case link.TypeData:
		n.linkMu.Lock()
		l := n.byIndex[idx]
		n.linkMu.Unlock()
		if l == nil {
			n.stats.inc(DropUnknownSession)
			n.limiter.Debug(n.log, "unknown-session", "dropped frame for unknown session (not a mimic link)", "from", src)
			n.resyncFrom(src)
			return false
		}
		_, err := n.openData(l, idx, buf.payload()[:0], frame)
		switch {
		case errors.Is(err, link.ErrReplay):
			n.stats.inc(DropFrameReplay)
			return false
		case errors.Is(err, errNoSession):
			n.stats.inc(DropUnknownSession)
			return false
		case err != nil:
			n.stats.inc(DropFrameAuth)
			return false
		}
		now := n.opts.Clock.Now()
		l.lastRecv.Store(now.UnixNano())
		l.mu.Lock()
		if l.addr.ep == src.ep && l.addr.ap != src.ap {
			// Authenticated traffic from a new address on the same
			// transport: the peer moved (NAT rebinding). Follow it, like
			// WireGuard's roaming.
			l.addr = src
		}
		l.mu.Unlock()
		return n.handlePayload(l, buf)
	default:
		n.stats.inc(DropMalformedFrame)
	}
	return false
}

func circOf(pl []byte) uint32 { return binary.BigEndian.Uint32(pl[4:8]) }

func putCirc(pl []byte, c uint32) { binary.BigEndian.PutUint32(pl[4:8], c) }

// handlePayload dispatches the decrypted link payload in buf. It reports
// whether a handler took buf over (a relayed cell); otherwise buf is the
// receive loop's again, and handlers copy what they keep.
func (n *Node) handlePayload(l *peerLink, buf *frameBuf) (taken bool) {
	pl := buf.payload()
	if tap := n.opts.Tap; tap != nil && tap.Received != nil && !tap.Received(l.id, pl) {
		return false
	}
	kind := pl[0]
	if kind == kindPadding {
		l.coverRecv.Add(1)
		n.stats.inc(EventPaddingIn)
		return false
	}
	if pl[1]|pl[2]|pl[3] != 0 {
		// Reserved bytes are sent as zero and never relayed; anything else
		// is a peer trying to mark a circuit (or a newer protocol we do
		// not speak). Either way the payload means nothing to us.
		n.stats.inc(DropReservedBytes)
		n.limiter.Warn(n.log, "reserved", "dropped a link payload with non-zero reserved bytes (tagging attempt?)", "peer", l.id.Short())
		return false
	}
	l.dataRecv.Add(1)
	circ := circOf(pl)
	cell := pl[payloadHeader:]
	switch kind {
	case kindKeepalive:
	case kindCreate:
		n.handleCreate(l, circ, cell)
	case kindCreated:
		n.handleCreated(l, circ, cell)
	case kindRelayFwd:
		return n.handleForward(l, circ, buf)
	case kindRelayBwd:
		return n.handleBackward(l, circ, buf)
	case kindDestroy:
		n.handleDestroy(l, circ, cell[0])
	default:
		n.stats.inc(DropMalformedFrame)
	}
	return false
}
