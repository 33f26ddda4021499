package socks

// Isolation groups. Each group owns one userspace TCP/IP stack (wireguard's
// tun/netstack over gVisor) and one Flow number, stable while the group
// lives. Packet pipeline, client → tunnel:
//
//  1. a SOCKS session dials through its group's stack (group.net);
//  2. the stack emits IP packets; the group's reader goroutine (owned by
//     the group, stopped by group.close) copies each into a pooled buffer
//     and queues it on Proxy.out, tagged with the group's Flow;
//  3. ReadPackets (the core's goroutine) drains Proxy.out into the core's
//     buffers and returns the pooled buffers.
//
// Tunnel → client: WritePackets looks the Flow up and injects the packet
// into that group's stack synchronously (netstack copies it), so the
// core's buffer is free again on return. Packets for unknown Flows (a
// group closed for idleness) are dropped.

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

// outPacket is a packet on its way from a group's stack to ReadPackets.
type outPacket struct {
	buf  *[]byte // from Proxy.bufs
	n    int
	flow uint64
}

type group struct {
	key  string
	flow uint64
	dev  tun.Device
	net  *netstack.Net
	v4   netip.Addr // the stack's first IPv4 address, if any
	v6   netip.Addr // the stack's first IPv6 address, if any

	// refs and lastUsed are guarded by Proxy.mu.
	refs     int
	lastUsed time.Time

	mu     sync.RWMutex // held for writing while closing; WritePackets reads
	closed bool

	stop chan struct{} // closed by close: the reader drops what it reads
	done chan struct{} // closed when the reader has exited
}

func newGroup(key string, flow uint64, o options) (*group, error) {
	dev, tnet, err := netstack.CreateNetTUN(o.addresses, o.dns, o.mtu)
	if err != nil {
		return nil, fmt.Errorf("socks: create userspace stack: %w", err)
	}
	g := &group{key: key, flow: flow, dev: dev, net: tnet,
		stop: make(chan struct{}), done: make(chan struct{})}
	for _, a := range o.addresses {
		if a.Is4() && !g.v4.IsValid() {
			g.v4 = a
		}
		if a.Is6() && !g.v6.IsValid() {
			g.v6 = a
		}
	}
	return g, nil
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

// write injects IP packets (IPv4 or IPv6 only) into the stack in one
// call. It reports false if the group is closed.
func (g *group) write(pkts [][]byte) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return false
	}
	_, err := g.dev.Write(pkts, 0)
	return err == nil
}

// close tears the stack down and waits for the reader. Idempotent.
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
