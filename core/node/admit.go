package node

import (
	"io"
	"net/netip"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/link"
	"github.com/tarzan-net/tarzan/core/view"
	"github.com/tarzan-net/tarzan/sdk/discovery"
)

// Admission: a peer enters the view only after (1) its descriptor's
// signature verifies and (2) it answers a fresh nonce sent to an address
// its descriptor advertises with a signature by its identity key. Discovery
// plugins and probing peers only propose.

type pendingProbe struct {
	addr   peerAddr
	expect identity.ID // zero when probing a bare address
	sent   time.Time
}

const (
	// reprobeAfter is how long a probe to an address suppresses another
	// (unless forced): a lost probe or proof delays admission this long.
	reprobeAfter = 5 * time.Second
	// probeValidity is how long the answer to a probe is accepted. Longer
	// than reprobeAfter, so that an overloaded peer's late proof still
	// counts instead of being dropped while the next probe already asks
	// it for another signature (at 2,000 simulated nodes on two cores,
	// proofs came seconds late and most signatures were wasted).
	probeValidity = 30 * time.Second
)

// handleProposals processes a batch from the discovery plugin.
func (n *Node) handleProposals(props []discovery.Proposal) {
	for _, p := range props {
		switch {
		case len(p.Descriptor) > 0:
			n.considerDescriptor(p.Descriptor, false)
		case p.Addr.IsValid():
			if n.isOwnAddr(p.Addr) {
				continue
			}
			if p.Transport != "" {
				if ep, ok := n.endpointNamed(p.Transport); ok {
					n.probe(peerAddr{ep: ep, ap: p.Addr}, identity.ID{}, false)
				}
				continue
			}
			// A bare address does not say which transport listens there:
			// probe it on each of ours (probes are cheap and few).
			for _, ep := range n.eps {
				n.probe(peerAddr{ep: ep.idx, ap: p.Addr}, identity.ID{}, false)
			}
		}
	}
}

// considerDescriptor verifies a proposed descriptor and, if it is new to
// us, probes the address it advertises. force skips the check for an
// outstanding probe (used when the peer just showed it is up).
func (n *Node) considerDescriptor(b []byte, force bool) {
	d, err := n.opts.ParseDescriptor(b, n.opts.Clock.Now())
	if err != nil {
		n.stats.inc(DropDescriptorInvalid)
		n.limiter.debug(n.log, "desc-invalid", "dropped invalid descriptor", "err", err)
		return
	}
	id := d.ID()
	if id == n.id {
		return
	}
	if p, ok := n.view.Get(id); ok && !d.Published.After(p.Desc.Published) {
		return
	}
	addr, ok := n.pickAddr(d)
	if !ok {
		return
	}
	n.probe(addr, id, force)
}

// pickAddr chooses, in our transport preference order, the first
// transport the descriptor advertises and its address there.
func (n *Node) pickAddr(d *descriptor.Descriptor) (peerAddr, bool) {
	return n.endpointFor(func(name string) (netip.AddrPort, bool) {
		for _, a := range d.Addrs {
			if a.Transport == name {
				return a.AddrPort, true
			}
		}
		return netip.AddrPort{}, false
	})
}

// probe sends a reachability probe unless one to addr is outstanding.
func (n *Node) probe(addr peerAddr, expect identity.ID, force bool) {
	now := n.opts.Clock.Now()
	var nonce [32]byte
	if _, err := io.ReadFull(n.opts.Rand, nonce[:]); err != nil {
		return
	}
	n.mu.Lock()
	// One index lookup, not a scan of every pending probe: a node
	// learning hundreds of peers at once probes them in one batch.
	// force (the peer just probed us, so it is up) overrides the wait
	// for an unanswered probe: ours may have gone out before the peer
	// listened, and nothing else would send another.
	if sent, ok := n.probing[addr]; ok && !force && now.Sub(sent) < reprobeAfter {
		n.mu.Unlock()
		return
	}
	n.probes[nonce] = &pendingProbe{addr: addr, expect: expect, sent: now}
	n.probing[addr] = now
	n.mu.Unlock()
	frame, err := link.EncodeProbe(nonce, n.Descriptor())
	if err != nil {
		n.log.Error("encoding probe", "err", err)
		return
	}
	n.sendRaw(addr, frame)
}

// handleProbe answers any probe with a signed proof (probes and proofs are
// the same size, so this amplifies nothing), then considers the prober's
// own descriptor.
func (n *Node) handleProbe(src peerAddr, frame []byte) {
	nonce, desc, err := link.DecodeProbe(frame)
	if err != nil {
		n.stats.inc(DropMalformedFrame)
		return
	}
	proof, err := link.EncodeProof(nonce, n.Descriptor(), n.opts.Identity)
	if err != nil {
		n.log.Error("encoding proof", "err", err)
		return
	}
	n.sendRaw(src, proof)
	if len(desc) > 0 {
		// The prober is up right now, whatever an earlier unanswered
		// probe of ours suggests.
		n.considerDescriptor(desc, true)
	}
}

// handleProof admits a peer whose proof answers one of our probes.
func (n *Node) handleProof(src peerAddr, frame []byte) {
	nonce, descBytes, sig, err := link.DecodeProof(frame)
	if err != nil {
		n.stats.inc(DropMalformedFrame)
		return
	}
	n.mu.Lock()
	pending := n.probes[nonce]
	delete(n.probes, nonce)
	if pending != nil && pending.addr == src {
		delete(n.probing, src)
	}
	n.mu.Unlock()
	if pending == nil || pending.addr != src {
		n.stats.inc(DropProofInvalid)
		return
	}
	now := n.opts.Clock.Now()
	d, err := n.opts.ParseDescriptor(descBytes, now)
	if err != nil {
		n.stats.inc(DropDescriptorInvalid)
		n.limiter.debug(n.log, "proof-desc", "dropped proof with invalid descriptor", "err", err)
		return
	}
	id := d.ID()
	if (!pending.expect.IsZero() && id != pending.expect) || id == n.id {
		n.stats.inc(DropProofInvalid)
		return
	}
	if err := link.VerifyProof(nonce, d, sig); err != nil {
		n.stats.inc(DropProofInvalid)
		return
	}
	// The answer must come from an address the descriptor claims: an
	// address cannot be claimed without being reachable there.
	claimed := false
	for _, a := range d.Addrs {
		if a.AddrPort == src.ap && a.Transport == n.eps[src.ep].name {
			claimed = true
		}
	}
	if !claimed {
		n.stats.inc(DropProofInvalid)
		return
	}
	if n.view.Add(&view.Peer{ID: id, Desc: d, Addr: src.ap, Transport: n.eps[src.ep].name, Admitted: now}) {
		n.stats.inc(EventAdmitted)
		n.tellTransports(d)
		n.log.Debug("peer admitted", "peer", id.Short(), "peers", n.view.Len())
		if err := n.opts.Discovery.Admitted([][]byte{d.Encoded()}); err != nil {
			n.limiter.warn(n.log, "admitted", "discovery plugin refused admitted descriptor", "err", err)
		}
	}
}

// expireProbes forgets probes that were never answered.
func (n *Node) expireProbes(now time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, p := range n.probes {
		if now.Sub(p.sent) > probeValidity {
			delete(n.probes, k)
		}
	}
	for a, sent := range n.probing {
		if now.Sub(sent) > reprobeAfter {
			delete(n.probing, a)
		}
	}
}
