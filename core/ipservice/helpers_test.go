package ipservice

import (
	"testing"

	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/core/node/nodetest"
)

// svcNet is an in-memory network (nodetest) whose nodes run IP services.
type svcNet struct {
	*nodetest.Net
	svcs []*Service // node i's service; nil without one
}

// startSvcNet starts count nodes with k mimics each; ip may change node
// i's options and returns its IP service's options (nil: none).
func startSvcNet(t *testing.T, count, k int, ip func(i int, o *node.Options) *Options) *svcNet {
	t.Helper()
	sn := &svcNet{svcs: make([]*Service, count)}
	sn.Net = nodetest.Start(t, nodetest.Config{Nodes: count, K: k,
		Tweak: func(i int, o *node.Options) {
			io := ip(i, o)
			if io == nil {
				return
			}
			s, err := New(*io)
			if err != nil {
				t.Fatal(err)
			}
			sn.svcs[i] = s
			o.ExitHandler = s.ExitHandler()
		},
		Attach: func(i int, n *node.Node) {
			if s := sn.svcs[i]; s != nil {
				if err := s.Start(n); err != nil {
					t.Fatal(err)
				}
			}
		},
	})
	return sn
}
