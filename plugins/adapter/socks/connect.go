package socks

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"runtime"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"

	"github.com/tarzan-net/tarzan/plugins/adapter/internal/copybuf"
)

// connect serves CONNECT: dial through the group's stack, reply, relay.
//
// By default the reply waits until the connection through the tunnel is
// up, so that a refused or unreachable server gets its own reply code
// (the exit completes the tunnelled handshake only once its own connect
// to the server succeeded). With the optimistic option the success reply
// leaves as soon as the SYN is queued on the stack's link: the client
// sends its request while the SYN crosses the tunnel, and the request
// leaves right behind the handshake's ACK, one local round trip (client
// and adapter wake-ups) earlier. A connect that then fails can no longer
// be told by a reply code: the client's connection is reset (counted as
// connect_failed_after_reply), which clients see as "connection reset by
// peer".
func (p *Proxy) connect(c net.Conn, key string, dst destination) {
	g, err := p.acquire(key)
	if err != nil {
		c.Write(reply(repGeneralFailure, netip.AddrPort{}))
		return
	}
	defer p.release(g)

	ctx, cancel := context.WithTimeout(p.ctx, p.opts.connectTimeout)
	addrs, rep := p.resolve(ctx, g, dst)
	replied := false
	var started func() // optimistic: the success reply, once the first SYN is queued
	if p.opts.optimistic {
		started = func() {
			if !replied {
				// Queuing the SYN readied the goroutine that hands the
				// stack's packets to the node (ReadPackets); let it run
				// first, so that waking the client does not delay the
				// SYN (as core/node's afterSend does for build frames).
				runtime.Gosched()
				// BND.ADDR and BND.PORT are not known yet: 0.0.0.0:0, as Tor sends.
				c.Write(reply(repSucceeded, netip.AddrPort{}))
				replied = true
			}
		}
	}
	var remote *gonet.TCPConn
	if rep == repSucceeded {
		remote, rep = p.dial(ctx, g, addrs, dst.port, started)
	}
	cancel()
	if rep != repSucceeded {
		p.log.Debug("connect failed", "flow", g.Flow, "reply", rep, "optimistic", replied)
		if replied {
			p.failedAfterReply.Add(1)
			resetConn(c)
			return
		}
		c.Write(reply(rep, netip.AddrPort{}))
		return
	}
	if !p.track(remote) {
		return
	}
	defer p.untrack(remote)
	defer remote.Close()

	if !replied {
		bnd, _ := netip.ParseAddrPort(remote.LocalAddr().String())
		if _, err := c.Write(reply(repSucceeded, bnd)); err != nil {
			return
		}
	}
	c.SetDeadline(time.Time{})
	relay(c, remote)
}

// resetConn closes c with a TCP reset rather than a FIN, so that the
// client sees the failure as an error, not as the end of a stream.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// dial connects to the first of addrs (resolve's list) that answers. The
// reply code says why it failed. A non-nil started is called when a SYN
// is queued (see stackgroup's DialTCPStarted).
func (p *Proxy) dial(ctx context.Context, g *group, addrs []netip.Addr, port uint16, started func()) (*gonet.TCPConn, byte) {
	rep := byte(repHostUnreachable)
	for i, a := range addrs {
		// Give every remaining address a fair share of the time left.
		actx, cancel := ctx, context.CancelFunc(func() {})
		if dl, ok := ctx.Deadline(); ok && len(addrs)-i > 1 {
			actx, cancel = context.WithDeadline(ctx, time.Now().Add(time.Until(dl)/time.Duration(len(addrs)-i)))
		}
		var conn *gonet.TCPConn
		var err error
		if started != nil {
			conn, err = g.DialTCPStarted(actx, netip.AddrPortFrom(a, port), started)
		} else {
			conn, err = g.DialTCP(actx, netip.AddrPortFrom(a, port))
		}
		cancel()
		if err == nil {
			return conn, repSucceeded
		}
		rep = replyFor(err)
		if p.ctx.Err() != nil {
			break
		}
	}
	return nil, rep
}

// resolve returns the addresses to try for dst (through the tunnel if
// it is a name), IPv4 first, leaving out
// families the stack has no address for and destinations that must never
// go through a tunnel.
func (p *Proxy) resolve(ctx context.Context, g *group, dst destination) ([]netip.Addr, byte) {
	var found []netip.Addr
	if dst.host == "" {
		found = []netip.Addr{dst.addr}
	} else {
		addrs, err := g.LookupHost(ctx, dst.host) // through the tunnel, or the group's cache
		if err != nil {
			return nil, repHostUnreachable
		}
		for _, a := range addrs {
			found = append(found, a.Unmap())
		}
	}
	var v4, v6 []netip.Addr
	rep := byte(repHostUnreachable)
	for _, a := range found {
		switch {
		case !p.allowedDestination(a):
			rep = repNotAllowed
			p.logRefused(a)
		case a.Is4() && g.V4.IsValid():
			v4 = append(v4, a)
		case a.Is6() && g.V6.IsValid():
			v6 = append(v6, a)
		default:
			rep = repNetworkUnreachable // no address of that family
		}
	}
	if len(v4)+len(v6) == 0 {
		return nil, rep
	}
	return append(v4, v6...), repSucceeded
}

// allowedDestination rejects addresses that cannot mean anything through
// a tunnel, or would reach into the exit itself (loopback, unless the
// allow_loopback option says the whole network lives on loopback, as in
// `tarzan demo`). The exit enforces its own policy for everything else.
func (p *Proxy) allowedDestination(a netip.Addr) bool {
	if a.IsLoopback() && p.opts.allowLoopback {
		return true
	}
	return a.IsValid() && !a.IsUnspecified() && !a.IsLoopback() && !a.IsMulticast() &&
		!a.IsLinkLocalUnicast() && a != netip.IPv4Unspecified() && a != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// Error strings gonet copies from gVisor's tcpip errors. A connect that
// meets an RST or an ICMP unreachable fails at once with one of these.
var (
	errStrRefused     = (&tcpip.ErrConnectionRefused{}).String()
	errStrHostUnreach = (&tcpip.ErrHostUnreachable{}).String()
	errStrHostDown    = (&tcpip.ErrHostDown{}).String()
	errStrNetUnreach  = (&tcpip.ErrNetworkUnreachable{}).String()
	errStrNoNet       = (&tcpip.ErrNoNet{}).String()
	errStrTimeout     = (&tcpip.ErrTimeout{}).String()
)

// replyFor maps a netstack dial error to a SOCKS5 reply code.
func replyFor(err error) byte {
	if errors.Is(err, context.DeadlineExceeded) {
		return repHostUnreachable // nothing came back in time
	}
	if errors.Is(err, context.Canceled) {
		return repGeneralFailure // shutting down
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		switch op.Err.Error() {
		case errStrRefused:
			return repConnectionRefused
		case errStrHostUnreach, errStrHostDown, errStrTimeout:
			return repHostUnreachable
		case errStrNetUnreach, errStrNoNet:
			return repNetworkUnreachable
		}
	}
	return repGeneralFailure
}

// relay copies both ways until both directions are done, passing each
// half-close on.
func relay(client net.Conn, remote *gonet.TCPConn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(remote, client)
		remote.CloseWrite()
	}()
	copybuf.Copy(client, remote) // the download direction: large reads

	if cw, ok := client.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		client.Close()
	}
	<-done
}
