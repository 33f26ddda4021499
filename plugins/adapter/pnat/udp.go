package pnat

import (
	"net"
	"net/netip"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/ippkt"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// forwardUDP runs synchronously inside the stack for the first datagram of
// a 5-tuple. It registers the flow at once (WritePackets' limit check
// relies on it) and leaves dialing and copying to a goroutine.
func (e *Exit) forwardUDP(r *udp.ForwarderRequest) {
	id := r.ID()
	m := e.lookupInternal(addrOf(id.RemoteAddress))
	dst := netip.AddrPortFrom(addrOf(id.LocalAddress), id.LocalPort)
	if m == nil {
		return
	}
	isDNS := e.isDNS(dst)
	if !isDNS && e.allowed(adapter.ProtoNameUDP, dst) != nil {
		return
	}
	kind := kindUDP
	if isDNS {
		kind = kindDNS
	}
	key := flowKey{ippkt.ProtoUDP, netip.AddrPortFrom(m.internal, id.RemotePort), dst}
	f, err := e.openFlow(m, kind, key)
	if err != nil {
		return
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		e.releaseFlow(f)
		return
	}
	in := gonet.NewUDPConn(&wq, ep)
	f.onAbort(func() { in.Close() })
	if !e.track() {
		e.releaseFlow(f)
		return
	}
	go func() {
		defer e.wg.Done()
		defer e.releaseFlow(f)
		if isDNS {
			e.serveDNSUDP(f, in)
			return
		}
		e.relayUDP(f, in, dst)
	}()
}

func (e *Exit) relayUDP(f *flow, in *gonet.UDPConn, dst netip.AddrPort) {
	if e.checkDial(dst) != nil {
		return
	}
	out, err := e.dial(e.ctx, "udp", netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port()).String())
	if err != nil {
		e.stats.dialFailed.Add(1)
		return
	}
	e.stats.dialed.Add(1)
	f.onAbort(func() { out.Close() })
	done := make(chan struct{})
	if e.track() {
		go func() {
			defer e.wg.Done()
			defer close(done)
			copyDatagrams(in, out, f)
			f.abort()
		}()
	} else {
		close(done)
	}
	copyDatagrams(out, in, f)
	f.abort()
	<-done
}

// copyDatagrams moves whole datagrams from src to dst until either fails.
func copyDatagrams(dst, src net.Conn, f *flow) {
	buf := make([]byte, 65535)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		f.touch()
		f.m.touch()
		// A failed send is the peer's business, as on a real path;
		// an aborted flow stops the read instead.
		dst.Write(buf[:n])
	}
}
