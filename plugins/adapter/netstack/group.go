package netstack

// Isolation groups. Each group owns one userspace TCP/IP stack and one
// Flow number, stable while the group lives (see the pipeline in doc.go).

import (
	"fmt"
	"net/netip"
	"sync"

	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

// outPacket is a packet on its way from a group's stack to ReadPackets.
type outPacket struct {
	buf  *[]byte // from Adapter.bufs
	n    int
	flow uint64
}

type group struct {
	flow uint64
	dev  tun.Device
	net  *netstack.Net
	v4   bool // the stack has an IPv4 address
	v6   bool // the stack has an IPv6 address

	refs int // guarded by Adapter.mu

	mu     sync.RWMutex // held for writing while closing; write reads
	closed bool

	stop chan struct{} // closed by close: the reader drops what it reads
	done chan struct{} // closed when the reader has exited
}

func newGroup(flow uint64, o options) (*group, error) {
	dev, tnet, err := netstack.CreateNetTUN(o.addresses, o.dns, o.mtu)
	if err != nil {
		return nil, fmt.Errorf("netstack: create userspace stack: %w", err)
	}
	g := &group{flow: flow, dev: dev, net: tnet, stop: make(chan struct{}), done: make(chan struct{})}
	for _, a := range o.addresses {
		g.v4 = g.v4 || a.Is4()
		g.v6 = g.v6 || a.Is6()
	}
	return g, nil
}

// hasFamily reports whether the stack can reach a.
func (g *group) hasFamily(a netip.Addr) bool {
	return (a.Is4() && g.v4) || (a.Is6() && g.v6)
}

// readLoop moves the stack's outgoing packets to out until the device is
// closed. It must keep reading while the group closes: netstack hands
// packets over on an unbuffered channel from inside the stack, so a reader
// that stops early could wedge the stack's shutdown.
func (g *group) readLoop(out chan<- outPacket, bufs *sync.Pool) {
	defer close(g.done)
	sizes := make([]int, 1)
	for {
		b := bufs.Get().(*[]byte)
		n, err := g.dev.Read([][]byte{*b}, sizes, 0)
		if err != nil {
			bufs.Put(b)
			return
		}
		if n == 0 || sizes[0] == 0 {
			bufs.Put(b)
			continue
		}
		select {
		case out <- outPacket{buf: b, n: sizes[0], flow: g.flow}:
		case <-g.stop:
			bufs.Put(b)
		}
	}
}

// write injects one IP packet into the stack. It reports false if the
// group is closed.
func (g *group) write(pkt []byte) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return false
	}
	_, err := g.dev.Write([][]byte{pkt}, 0)
	return err == nil
}

// close tears the stack down (aborting its connections) and waits for
// the reader. Idempotent.
func (g *group) close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		<-g.done
		return
	}
	g.closed = true
	close(g.stop)
	g.dev.Close()
	g.mu.Unlock()
	<-g.done
}
