package stackgroup

import (
	"context"
	"errors"
	"net"
	"net/netip"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// DialTCPStarted is DialTCP (gonet.DialContextTCP, with the same errors)
// that calls started once the SYN is queued on the stack's link, before
// it waits for the answer: the socks adapter's optimistic CONNECT reply
// goes out then, so that the SYN never waits behind it. started is not
// called when the connect fails at once (no route, bad address).
func (s *Stack) DialTCPStarted(ctx context.Context, ap netip.AddrPort, started func()) (*gonet.TCPConn, error) {
	fa, proto := fullAddr(ap)
	var wq waiter.Queue
	ep, err := s.s.NewEndpoint(tcp.ProtocolNumber, proto, &wq)
	if err != nil {
		return nil, errors.New(err.String())
	}
	entry, notify := waiter.NewChannelEntry(waiter.WritableEvents)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)
	if err := ctx.Err(); err != nil {
		ep.Close()
		return nil, err
	}
	err = ep.Connect(fa)
	if _, ok := err.(*tcpip.ErrConnectStarted); ok {
		started()
		select {
		case <-ctx.Done():
			ep.Close()
			return nil, ctx.Err()
		case <-notify:
		}
		err = ep.LastError()
	}
	if err != nil {
		ep.Close()
		return nil, &net.OpError{Op: "connect", Net: "tcp", Addr: net.TCPAddrFromAddrPort(ap), Err: errors.New(err.String())}
	}
	return gonet.NewTCPConn(&wq, ep), nil
}
