// Package stackgroup is what the socks and netstack adapters share: one
// userspace TCP/IP stack (wireguard's tun/netstack over gVisor) per
// isolation group, tagged with the group's Flow, whose outgoing packets a
// reader goroutine queues for the adapter's ReadPackets. Packet pipeline,
// client → tunnel:
//
//  1. the application dials through its group's stack (Stack.Net);
//  2. the stack emits IP packets; the Stack's reader goroutine (ReadLoop,
//     stopped by Close) copies each into a pooled buffer and queues it on
//     the adapter's out channel, tagged with the Flow;
//  3. ReadPackets (the core's goroutine) drains that channel into the
//     core's buffers and returns the pooled buffers (Read).
//
// Tunnel → client: the adapter's WritePackets looks the Flow up and
// injects the packets into that group's stack synchronously (Stack.Write:
// netstack copies them), so the core's buffer is free again on return.
//
// What differs between the adapters (how groups are keyed, counted and
// closed for idleness) stays in each adapter.
package stackgroup

import (
	"net/netip"
	"sync"

	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

// Packet is a packet on its way from a group's stack to ReadPackets.
type Packet struct {
	Buf  *[]byte // from the adapter's pool
	N    int
	Flow uint64
}

// Stack is one isolation group's userspace stack.
type Stack struct {
	Flow uint64
	Net  *netstack.Net
	V4   netip.Addr // the stack's first IPv4 address, if any
	V6   netip.Addr // the stack's first IPv6 address, if any

	dev tun.Device

	mu     sync.RWMutex // held for writing while closing; Write reads
	closed bool

	stop chan struct{} // closed by Close: the reader drops what it reads
	done chan struct{} // closed when the reader has exited
}

// New creates the stack of the group numbered flow, with the given
// addresses, DNS servers and MTU. Start its reader with ReadLoop.
func New(flow uint64, addresses, dns []netip.Addr, mtu int) (*Stack, error) {
	dev, tnet, err := netstack.CreateNetTUN(addresses, dns, mtu)
	if err != nil {
		return nil, err
	}
	s := &Stack{Flow: flow, Net: tnet, dev: dev,
		stop: make(chan struct{}), done: make(chan struct{})}
	for _, a := range addresses {
		if a.Is4() && !s.V4.IsValid() {
			s.V4 = a
		}
		if a.Is6() && !s.V6.IsValid() {
			s.V6 = a
		}
	}
	return s, nil
}

// HasFamily reports whether the stack has an address of a's family, i.e.
// can reach a.
func (s *Stack) HasFamily(a netip.Addr) bool {
	return (a.Is4() && s.V4.IsValid()) || (a.Is6() && s.V6.IsValid())
}

// ReadLoop moves the stack's outgoing packets to out until the device is
// closed; bufs must hold *[]byte of at least the MTU. It must keep
// reading while the group closes: netstack hands packets over on an
// unbuffered channel from inside the stack, so a reader that stops early
// could wedge the stack's shutdown.
func (s *Stack) ReadLoop(out chan<- Packet, bufs *sync.Pool) {
	defer close(s.done)
	sizes := make([]int, 1)
	for {
		b := bufs.Get().(*[]byte)
		n, err := s.dev.Read([][]byte{*b}, sizes, 0)
		if err != nil {
			bufs.Put(b)
			return
		}
		if n == 0 || sizes[0] == 0 {
			bufs.Put(b)
			continue
		}
		select {
		case out <- Packet{Buf: b, N: sizes[0], Flow: s.Flow}:
		case <-s.stop:
			bufs.Put(b)
		}
	}
}

// Write injects IP packets (IPv4 or IPv6 only) into the stack in one
// call. It reports false if the stack is closed or refused them.
func (s *Stack) Write(pkts [][]byte) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return false
	}
	_, err := s.dev.Write(pkts, 0)
	return err == nil
}

// Close tears the stack down (aborting its connections) and waits for
// the reader. Idempotent.
func (s *Stack) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.done
		return
	}
	s.closed = true
	close(s.stop)
	s.dev.Close()
	s.mu.Unlock()
	<-s.done
}
