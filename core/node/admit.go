package node

import (
	"errors"
	"io"
	"net/netip"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/link"
	"github.com/tarzan-net/tarzan/core/view"
	"github.com/tarzan-net/tarzan/sdk/discovery"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
)

// Admission: a peer enters the view only after (1) its descriptor's
// signature verifies and (2) it answers a fresh nonce sent to an address
// its descriptor advertises with a signature by its identity key over the
// nonce, our node ID and that exact descriptor. Discovery plugins and
// probing peers only propose. A probe is answered only toward the address
// it came from, and only if the descriptor it carries lists that address,
// so no one can point a node at a third party.

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
	d, ok := n.parseDescriptor(b, n.opts.Clock.Now())
	if !ok {
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
	n.tellParams(d) // the probe may need them to reach the peer
	n.probe(addr, id, force)
}

// parseDescriptor verifies a descriptor, counting a refusal under its
// reason.
func (n *Node) parseDescriptor(b []byte, now time.Time) (*descriptor.Descriptor, bool) {
	d, err := n.opts.ParseDescriptor(b, now)
	switch {
	case errors.Is(err, descriptor.ErrLifetime):
		n.stats.inc(DropDescriptorLifetime)
		n.limiter.Debug(n.log, "desc-lifetime", "dropped descriptor valid for too long", "err", err)
		return nil, false
	case err != nil:
		n.stats.inc(DropDescriptorInvalid)
		n.limiter.Debug(n.log, "desc-invalid", "dropped invalid descriptor", "err", err)
		return nil, false
	}
	return d, true
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

// probe sends a reachability probe unless one to addr is outstanding; it
// reports whether it sent one.
func (n *Node) probe(addr peerAddr, expect identity.ID, force bool) bool {
	now := n.opts.Clock.Now()
	var nonce [32]byte
	if _, err := io.ReadFull(n.opts.Rand, nonce[:]); err != nil {
		return false
	}
	n.linkMu.Lock()
	// One index lookup, not a scan of every pending probe: a node
	// learning hundreds of peers at once probes them in one batch.
	// force (the peer just probed us, so it is up) overrides the wait
	// for an unanswered probe: ours may have gone out before the peer
	// listened, and nothing else would send another.
	if sent, ok := n.probing[addr]; ok && !force && now.Sub(sent) < reprobeAfter {
		n.linkMu.Unlock()
		return false
	}
	n.probes[nonce] = &pendingProbe{addr: addr, expect: expect, sent: now}
	n.probing[addr] = now
	n.linkMu.Unlock()
	frame, err := link.EncodeProbe(nonce, n.Descriptor())
	if err != nil {
		n.log.Error("encoding probe", "err", err)
		return false
	}
	n.sendRaw(addr, frame)
	return true
}

// handleProbe answers a probe with a signed proof, sent back where the
// probe came from, then probes the prober back there if its descriptor is
// new to us. In this order, each step cheap before the next:
//
//  1. the frame must decode (no key work);
//  2. the source and everyone together must be within their probe budgets
//     (AdmissionLimits; drop_probe_ratelimit), before any key work;
//  3. the prober's descriptor must verify (one signature check) and list
//     the source address on this transport (drop_probe_reflect): a probe
//     with someone else's address in it draws nothing toward anyone, so
//     probes cannot be reflected at a third party, and the answer goes
//     only where the question came from (probes and proofs are the same
//     size: no amplification);
//  4. the proof is signed (one signature) for this prober and this node's
//     current descriptor.
func (n *Node) handleProbe(src peerAddr, frame []byte) {
	nonce, desc, err := link.DecodeProbe(frame)
	if err != nil {
		n.stats.inc(DropMalformedFrame)
		return
	}
	now := n.opts.Clock.Now()
	if !n.allowProbe(src.ap, now) {
		n.stats.inc(DropProbeRateLimit)
		n.limiter.Debug(n.log, "probe-ratelimit", "refused probe over its budget", "from", src)
		return
	}
	d, ok := n.parseDescriptor(desc, now)
	if !ok {
		return
	}
	if !n.lists(d, src) {
		n.stats.inc(DropProbeReflect)
		n.limiter.Debug(n.log, "probe-reflect", "dropped probe whose descriptor does not list its source", "from", src, "claims", d.ID().Short())
		return
	}
	id := d.ID()
	if id == n.id {
		return
	}
	proof, err := link.EncodeProof(nonce, id, n.Descriptor(), n.opts.Identity)
	if err != nil {
		n.log.Error("encoding proof", "err", err)
		return
	}
	n.stats.inc(EventProofsSigned)
	n.sendRaw(src, proof)
	if p, ok := n.view.Get(id); ok && !d.Published.After(p.Desc.Published) {
		return
	}
	// The prober is up right now, whatever an earlier unanswered probe of
	// ours suggests, and it listens at src.
	n.tellParams(d)
	n.probe(src, id, true)
}

// lists reports whether d advertises src (address and transport).
func (n *Node) lists(d *descriptor.Descriptor, src peerAddr) bool {
	for _, a := range d.Addrs {
		if a.AddrPort == src.ap && a.Transport == n.eps[src.ep].name {
			return true
		}
	}
	return false
}

// handleProof admits a peer whose proof answers one of our probes.
func (n *Node) handleProof(src peerAddr, frame []byte) {
	nonce, descBytes, sig, err := link.DecodeProof(frame)
	if err != nil {
		n.stats.inc(DropMalformedFrame)
		return
	}
	n.linkMu.Lock()
	pending := n.probes[nonce]
	delete(n.probes, nonce)
	if pending != nil && pending.addr == src {
		delete(n.probing, src)
	}
	n.linkMu.Unlock()
	if pending == nil || pending.addr != src {
		n.stats.inc(DropProofInvalid)
		return
	}
	now := n.opts.Clock.Now()
	d, ok := n.parseDescriptor(descBytes, now)
	if !ok {
		return
	}
	id := d.ID()
	if (!pending.expect.IsZero() && id != pending.expect) || id == n.id {
		n.stats.inc(DropProofInvalid)
		return
	}
	// The signature covers our ID and this exact descriptor: a proof the
	// peer gave someone else, or moved onto another of its descriptors,
	// does not verify.
	if err := link.VerifyProof(nonce, n.id, d, sig); err != nil {
		n.stats.inc(DropProofInvalid)
		n.limiter.Debug(n.log, "proof-sig", "dropped proof that does not verify", "from", src, "err", err)
		return
	}
	// The answer must come from an address the descriptor claims: an
	// address cannot be claimed without being reachable there.
	if !n.lists(d, src) {
		n.stats.inc(DropProofInvalid)
		return
	}
	if held, ok := n.view.Get(id); ok && d.Published.Before(held.Desc.Published) {
		// Proven, but older than what we hold: a rollback (or a peer
		// whose clock went back; it is re-admitted once the newer
		// descriptor is evicted or expires).
		n.stats.inc(DropDescriptorOlder)
		n.limiter.Debug(n.log, "proof-older", "dropped proof with a descriptor older than the one held", "peer", id.Short(), "from", src)
		return
	}
	n.forgetDormant(id)
	if !n.view.Add(&view.Peer{ID: id, Desc: d, Addr: src.ap, Transport: n.eps[src.ep].name, Admitted: now, ExitPolicy: exitPolicyOf(d)}) {
		n.view.Touch(id, now) // the same descriptor, proven again: the peer is there
		return
	}
	n.stats.inc(EventAdmitted)
	n.tellTransports(d)
	n.log.Debug("peer admitted", "peer", id.Short(), "peers", n.view.Len())
	if err := n.opts.Discovery.Admitted([][]byte{d.Encoded()}); err != nil {
		n.limiter.Warn(n.log, "admitted", "discovery plugin refused admitted descriptor", "err", err)
	}
}

// expireProbes forgets probes that were never answered.
func (n *Node) expireProbes(now time.Time) {
	n.linkMu.Lock()
	defer n.linkMu.Unlock()
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

// exitPolicyOf parses the exit policy an exit's descriptor publishes,
// once, at admission: path selection asks it of every candidate exit.
// Nil when the peer is no exit or its summary does not parse (it is then
// used for no destination).
func exitPolicyOf(d *descriptor.Descriptor) *exitpolicy.Policy {
	if !d.Exit {
		return nil
	}
	pol, err := exitpolicy.ParseSummary(d.ExitPolicy)
	if err != nil {
		return nil
	}
	return pol
}
