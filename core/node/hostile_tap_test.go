package node

import (
	"sync/atomic"
	"testing"

	"github.com/tarzan-net/tarzan/core/identity"
)

// hostileTap is a Tap (tap.go) whose callbacks a test sets and clears
// while the node runs: Options.Tap is fixed when the node is made, so
// every node gets one and most stay empty.
type hostileTap struct {
	sending   atomic.Pointer[func(to identity.ID, pl []byte)]
	received  atomic.Pointer[func(from identity.ID, pl []byte)]
	delivered atomic.Pointer[func(cmd byte, data []byte)]
}

func (h *hostileTap) tap() *Tap {
	return &Tap{
		Sending: func(to identity.ID, pl []byte) bool {
			if f := h.sending.Load(); f != nil {
				(*f)(to, pl)
			}
			return true
		},
		Received: func(from identity.ID, pl []byte) bool {
			if f := h.received.Load(); f != nil {
				(*f)(from, pl)
			}
			return true
		},
		Delivered: func(_ identity.ID, _ uint32, cmd byte, data []byte) {
			if f := h.delivered.Load(); f != nil {
				(*f)(cmd, data)
			}
		},
	}
}

// startTapNet is startNet with a hostileTap on every node.
func startTapNet(t *testing.T, count, k int, tweak func(i int, o *Options)) (*testNet, map[identity.ID]*hostileTap) {
	t.Helper()
	taps := make([]*hostileTap, count)
	tn := startNet(t, count, k, func(i int, o *Options) {
		taps[i] = &hostileTap{}
		o.Tap = taps[i].tap()
		if tweak != nil {
			tweak(i, o)
		}
	})
	byID := map[identity.ID]*hostileTap{}
	for i, n := range tn.nodes {
		byID[n.id] = taps[i]
	}
	return tn, byID
}
