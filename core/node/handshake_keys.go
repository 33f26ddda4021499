package node

import (
	"crypto/ecdh"
	"runtime"
	"sync"

	"github.com/tarzan-net/tarzan/core/onion"
)

// spareKey holds one onion-handshake ephemeral key made ahead of time
// (onion.NewEphemeral), so that making it (one X25519 scalar
// multiplication, a third of a relay's CREATE and two thirds of a
// client's hop preparation) happens after a handshake's message left,
// while the network carries it, instead of before. Relays take it in
// handleCreate and make the next after the CREATED left; a build takes
// it for each hop and makes the next while it waits for the hop's reply.
//
// Forward secrecy is unchanged: a key is used by exactly one handshake
// and dropped; whoever can read the spare out of memory can read the
// handshake that will use it as well.
type spareKey struct {
	mu sync.Mutex
	k  *ecdh.PrivateKey
}

// takeEphemeral returns the spare key, or makes one when there is none.
func (n *Node) takeEphemeral() (*ecdh.PrivateKey, error) {
	n.spare.mu.Lock()
	k := n.spare.k
	n.spare.k = nil
	n.spare.mu.Unlock()
	if k != nil {
		return k, nil
	}
	return onion.NewEphemeral(n.opts.Rand)
}

// returnEphemeral puts back a key no handshake revealed (the handshake
// failed before its reply was made), so that a bad CREATE costs no key.
func (n *Node) returnEphemeral(k *ecdh.PrivateKey) {
	n.spare.mu.Lock()
	if n.spare.k == nil {
		n.spare.k = k
	}
	n.spare.mu.Unlock()
}

// refillEphemeral makes the spare key if there is none.
func (n *Node) refillEphemeral() {
	n.spare.mu.Lock()
	have := n.spare.k != nil
	n.spare.mu.Unlock()
	if have {
		return
	}
	k, err := onion.NewEphemeral(n.opts.Rand)
	if err != nil {
		return // the next handshake makes its own and reports the error
	}
	n.returnEphemeral(k)
}

// afterSend lets the frame just queued leave before the caller does work
// that its answer does not wait for (the next handshake's key, a rejoin
// index). Queuing it readied the writer goroutine on this goroutine's P
// (the runtime's runnext), where it runs only once this goroutine blocks,
// unless another thread steals it: on a busy machine that thread often
// gets no core for a while, and the frame waited for all of that work.
// Yielding runs the writer now. Not while a receive loop holds the
// writers corked: then the frame leaves with the batch anyway.
func (n *Node) afterSend() {
	if n.corks.Load() == 0 {
		runtime.Gosched()
	}
}
