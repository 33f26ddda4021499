package node

import (
	"fmt"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/link"
)

// Tap lets a node's own operator watch and change what that node receives
// and sends on its mimic links, as link plaintext: kind(1) reserved(3)
// circuit_id(4) cell(1368) (docs/PROTOCOL.md §4.2). It exists for the
// red-team harness (package redteam) and for measurement: a hostile node
// is an ordinary node with a Tap. It gives a node no power over anyone else
// that running modified code would not give it too; what other nodes
// accept is still decided by their own cores. A nil Tap, or a nil field,
// costs one check per payload.
//
// The callbacks run on the node's receive and send paths and must not
// block. payload is only valid during the call; copy what you keep.
type Tap struct {
	// Received sees every authenticated link payload from peer before the
	// node handles it (padding included). Returning false drops it.
	Received func(from identity.ID, payload []byte) bool
	// Sending sees every link payload the node is about to encrypt for
	// peer, padding included, and may change it in place. Returning false
	// drops it.
	Sending func(to identity.ID, payload []byte) bool
	// Delivered sees every relay command delivered to this node as a hop
	// of someone's tunnel, after onion decryption: the link and circuit it
	// came in on, the command and its data.
	Delivered func(from identity.ID, circ uint32, cmd byte, data []byte)
}

// SendLinkPayload sends one link payload (link.PayloadSize bytes, see Tap)
// to the mimic to, as it is, bypassing this node's circuit logic. It is the
// red-team harness's way to make a node say what the protocol would not
// (raw CREATEs, forged cells); the receiver treats it like any payload.
func (n *Node) SendLinkPayload(to identity.ID, payload []byte) error {
	if len(payload) != link.PayloadSize {
		return fmt.Errorf("node: link payload of %d bytes, want %d", len(payload), link.PayloadSize)
	}
	l := n.upLink(to)
	if l == nil {
		return fmt.Errorf("node: no link to %s: %w", to.Short(), errNoSession)
	}
	p := getBuf()
	copy(p.payload(), payload)
	return n.sendPayload(l, p)
}
