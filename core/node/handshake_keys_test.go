package node

import (
	"context"
	"crypto/ecdh"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
)

// A build uses each hop's spare handshake key and leaves a fresh one
// behind (made after the reply left), and the initiator's likewise: the
// scalar multiplication that makes an ephemeral key is never between a
// message's arrival and the answer (handshake_keys.go).
func TestSpareHandshakeKeys(t *testing.T) { synctest.Test(t, testSpareHandshakeKeys) }

func testSpareHandshakeKeys(t *testing.T) {
	tn := startNet(t, 8, 3, nil)
	src := tn.nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	byID := map[identity.ID]*Node{}
	for _, n := range tn.nodes {
		byID[n.id] = n
	}
	spare := func(n *Node) *ecdh.PrivateKey {
		n.spare.mu.Lock()
		defer n.spare.mu.Unlock()
		return n.spare.k
	}
	first, err := src.BuildTunnel(ctx, 3)
	if err != nil {
		t.Fatalf("BuildTunnel: %v", err)
	}
	first.Close()
	before := map[*Node]*ecdh.PrivateKey{}
	for _, n := range tn.nodes {
		before[n] = spare(n)
	}
	tun, err := src.BuildTunnel(ctx, 3)
	if err != nil {
		t.Fatalf("BuildTunnel: %v", err)
	}
	defer tun.Close()
	synctest.Wait() // the last hop's refill runs after its CREATED left
	for i, h := range tun.Hops() {
		n := byID[h.ID]
		now := spare(n)
		switch {
		case now == nil:
			t.Errorf("hop %d has no spare key after answering a CREATE", i+1)
		case before[n] != nil && now.Equal(before[n]):
			t.Errorf("hop %d answered a CREATE without taking its spare key", i+1)
		}
	}
	if now := spare(src); now == nil || (before[src] != nil && now.Equal(before[src])) {
		t.Errorf("the initiator's spare key was not used and replaced by the build (before %v, now %v)", before[src] != nil, now != nil)
	}
}
