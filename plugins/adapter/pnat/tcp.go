package pnat

import (
	"context"
	"io"
	"net"
	"net/netip"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/tarzan-net/tarzan/plugins/adapter/internal/copybuf"
)

// forwardTCP runs, on a goroutine of the forwarder's, for each new SYN.
// It dials first and completes the handshake with the client only once the
// server answered, so a refused or unreachable server shows up as a RST.
func (e *Exit) forwardTCP(r *tcp.ForwarderRequest) {
	if !e.track() {
		r.Complete(true)
		return
	}
	defer e.wg.Done()
	id := r.ID()
	m := e.lookupInternal(addrOf(id.RemoteAddress))
	dst := netip.AddrPortFrom(addrOf(id.LocalAddress), id.LocalPort)
	if m == nil {
		r.Complete(true)
		return
	}
	isDNS := e.isDNS(dst)
	if !isDNS && e.allowed(adapter.ProtoNameTCP, dst) != nil {
		r.Complete(true)
		return
	}
	kind := kindTCP
	if isDNS {
		kind = kindDNS
	}
	f, err := e.openFlow(m, kind, flowKey{})
	if err != nil {
		r.Complete(true)
		return
	}
	defer e.releaseFlow(f)

	var out net.Conn
	if !isDNS {
		if e.checkDial(dst) != nil {
			r.Complete(true)
			return
		}
		ctx, cancel := context.WithTimeout(e.ctx, e.cfg.dialTimeout)
		f.onAbort(cancel)
		out, err = e.dial(ctx, "tcp", netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port()).String())
		cancel()
		if err != nil {
			e.stats.dialFailed.Add(1)
			r.Complete(true)
			return
		}
		e.stats.dialed.Add(1)
		f.onAbort(func() { out.Close() })
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		r.Complete(true)
		if out != nil {
			out.Close()
		}
		return
	}
	r.Complete(false)
	ep.SocketOptions().SetKeepAlive(true)
	in := gonet.NewTCPConn(&wq, ep)
	f.onAbort(func() { ep.Abort(); in.Close() })
	if isDNS {
		e.serveDNSTCP(f, in)
		in.Close()
		return
	}
	e.splice(f, in, out)
}

// splice copies both ways, passing half-closes on, until both sides are
// done or the flow is aborted.
func (e *Exit) splice(f *flow, in *gonet.TCPConn, out net.Conn) {
	done := make(chan struct{})
	if e.track() {
		go func() {
			defer e.wg.Done()
			defer close(done)
			io.Copy(out, activity{in, f})
			if tc, ok := out.(interface{ CloseWrite() error }); ok {
				tc.CloseWrite()
			}
		}()
	} else {
		close(done)
	}
	copybuf.Copy(in, activity{out, f}) // the download direction: large reads
	in.CloseWrite()
	<-done
	in.Close()
	out.Close()
}

// activity marks a flow alive whenever data moves.
type activity struct {
	r io.Reader
	f *flow
}

func (a activity) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if n > 0 {
		a.f.touch()
		a.f.m.touch()
	}
	return n, err
}

func addrOf(a tcpip.Address) netip.Addr {
	ip, _ := netip.AddrFromSlice(a.AsSlice())
	return ip
}
