package node

import (
	"crypto/ed25519"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// endpoint is one of the node's transports, bound and running: its own
// receive loop and its own writer queue.
type endpoint struct {
	idx       int
	tr        transport.Transport
	name      string
	bound     netip.AddrPort
	advertise []netip.AddrPort
	// The writer queue (send.go): a FIFO ring of frames to write, written
	// by whoever holds wmu (flush): the goroutine that ends a batch, or
	// the writer goroutine, woken by wake.
	qmu   sync.Mutex
	q     []*frameBuf // ring of writerQueue frames
	qhead int
	qn    int
	qlen  atomic.Int32  // qn, read without qmu
	space chan struct{} // closed when frames leave a full queue; nil: nobody waits
	wake  chan struct{} // the writer goroutine has something to flush
	// wmu is held (a token in it) by whoever flushes; it guards bufs and
	// pkts. A channel, not a sync.Mutex: the writer waiting for a
	// receive loop's write is then durably blocked in a synctest bubble.
	wmu  chan struct{}
	bufs []*frameBuf
	pkts []transport.Packet
	// room wakes the senders waiting for out to hold fewer than
	// inlineRoom frames (awaitRoom): closed by the writer and replaced.
	roomMu      sync.Mutex
	room        chan struct{}
	roomWaiters atomic.Int32
}

// writerQueue is how many frames an endpoint's writer queue holds,
// shared by every tunnel and relayed cell (see inlineRoom).
const writerQueue = 4096

// peerAddr is where a peer is reached: which of our transports, and the
// address on it.
type peerAddr struct {
	ep int
	ap netip.AddrPort
}

func (a peerAddr) String() string { return a.ap.String() }

// bindEndpoints listens on every configured transport.
func (n *Node) bindEndpoints() error {
	for i, spec := range n.opts.Transports {
		if err := n.giveCredentials(spec.Transport); err != nil {
			return err
		}
		bound, err := spec.Transport.Listen(spec.Listen)
		if err != nil {
			return fmt.Errorf("node: transport %s cannot listen on %v: %w", spec.Transport.Name(), spec.Listen, err)
		}
		adv := spec.Advertise
		if len(adv) == 0 {
			if bound.Addr().IsUnspecified() {
				return fmt.Errorf("node: transport %s listening on %v: set an advertise address (others cannot reach an unspecified address)", spec.Transport.Name(), bound)
			}
			adv = []netip.AddrPort{bound}
		}
		if as, ok := spec.Transport.(transport.AdvertiseSetter); ok {
			if err := as.SetAdvertised(adv[0]); err != nil {
				return fmt.Errorf("node: transport %s refused its advertised address %v: %w", spec.Transport.Name(), adv[0], err)
			}
		}
		n.eps = append(n.eps, &endpoint{
			idx: i, tr: spec.Transport, name: spec.Transport.Name(), bound: bound, advertise: adv,
			q: make([]*frameBuf, writerQueue), wake: make(chan struct{}, 1), wmu: make(chan struct{}, 1),
			bufs: make([]*frameBuf, transport.BatchSize), pkts: make([]transport.Packet, transport.BatchSize),
		})
	}
	n.bound = n.eps[0].advertise[0]
	return nil
}

// giveCredentials hands a transport that authenticates at its own layer
// (DTLS) a key of its own, endorsed by our identity key; the identity key
// itself never leaves the core.
func (n *Node) giveCredentials(tr transport.Transport) error {
	cs, ok := tr.(transport.CredentialSetter)
	if !ok {
		return nil
	}
	pub, priv, err := ed25519.GenerateKey(n.opts.Rand)
	if err != nil {
		return fmt.Errorf("node: transport key: %w", err)
	}
	err = cs.SetCredentials(transport.Credentials{
		NodeID:      n.id,
		CertKey:     priv,
		Endorsement: n.opts.Identity.Sign(transport.EndorsementMessage(pub)),
		IdentityKey: n.opts.Identity.Public(),
	})
	if err != nil {
		return fmt.Errorf("node: transport %s refused its credentials: %w", tr.Name(), err)
	}
	return nil
}

// tellParams hands transports that take them (a pluggable transport's
// bridge arguments) the parameters a verified descriptor publishes for
// its addresses. It runs before the first probe to a peer learned from a
// descriptor, since reaching that peer may need them (obfs4 dials only
// with the server's cert), and again at admission; the transport decides
// what to do with parameters for an address that already has some
// (plugins/transport/pt keeps one that has worked).
func (n *Node) tellParams(d *descriptor.Descriptor) {
	for _, ep := range n.eps {
		ps, ok := ep.tr.(transport.PeerParamsSetter)
		if !ok {
			continue
		}
		for _, a := range d.Addrs {
			if a.Transport == ep.name && a.Params != "" {
				if err := ps.SetPeerParams(a.AddrPort, a.Params); err != nil {
					n.limiter.Warn(n.log, "setpeerparams", "transport refused a peer's parameters", "transport", ep.name, "err", err)
				}
			}
		}
	}
}

// tellTransports lets transports that verify peers know which identity
// each admitted peer's addresses belong to.
func (n *Node) tellTransports(d *descriptor.Descriptor) {
	n.tellParams(d)
	for _, ep := range n.eps {
		pv, ok := ep.tr.(transport.PeerVerifier)
		if !ok {
			continue
		}
		for _, a := range d.Addrs {
			if a.Transport == ep.name {
				if err := pv.SetPeer(a.AddrPort, d.Identity); err != nil {
					n.limiter.Warn(n.log, "setpeer", "transport refused a peer identity", "transport", ep.name, "err", err)
				}
			}
		}
	}
}

// endpointFor picks, in our preference order, the first transport the
// peer also advertises, and the peer's address on it.
func (n *Node) endpointFor(addrs func(name string) (netip.AddrPort, bool)) (peerAddr, bool) {
	for _, ep := range n.eps {
		if ap, ok := addrs(ep.name); ok {
			return peerAddr{ep: ep.idx, ap: ap}, true
		}
	}
	return peerAddr{}, false
}

// endpointNamed finds our endpoint for a transport name.
func (n *Node) endpointNamed(name string) (int, bool) {
	for _, ep := range n.eps {
		if ep.name == name {
			return ep.idx, true
		}
	}
	return 0, false
}

// isOwnAddr reports whether a is one of our own addresses.
func (n *Node) isOwnAddr(a netip.AddrPort) bool {
	for _, ep := range n.eps {
		if ep.bound == a {
			return true
		}
		for _, x := range ep.advertise {
			if x == a {
				return true
			}
		}
	}
	return false
}

// TransportNames lists the node's transports in preference order.
func (n *Node) TransportNames() []string {
	out := make([]string, len(n.eps))
	for i, ep := range n.eps {
		out[i] = ep.name
	}
	return out
}
