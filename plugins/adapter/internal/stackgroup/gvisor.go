package stackgroup

import (
	"fmt"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"

	"github.com/tarzan-net/tarzan/plugins/adapter/internal/gso"
)

// Our own gVisor stack construction (D42), in place of wireguard's
// netstack.CreateNetTUN, which hides the stack: we set the TCP options
// ourselves and read the link endpoint directly, without a goroutine
// between the stack and the adapter's ReadPackets.

// TCPOptions are the TCP settings of a Tarzan userspace stack. Each is set
// explicitly, so a gVisor upgrade that changes a default changes nothing
// here; ReadTCPOptions reads them back.
type TCPOptions struct {
	// SACK: selective acknowledgements (gVisor's default is off). A lost
	// cell is then repaired without resending what followed it.
	SACK bool
	// Delay: Nagle's algorithm (TCP_NODELAY off). Off: a small segment
	// (a request line, a SOCKS-relayed write) leaves at once instead of
	// waiting for the previous one's ACK, a tunnel round trip.
	Delay bool
	// Recovery: loss detection. 0 is SACK and duplicate ACKs (RFC 6675),
	// as the exit's stack (plugins/adapter/pnat): after a burst loss
	// gVisor's RACK left senders at two segments per 200 ms for tens of
	// seconds.
	Recovery tcpip.TCPRecovery
}

// DefaultTCP is what every adapter stack gets. gVisor acknowledges every
// segment at once (an endpoint starts in quick-ACK mode and has no delayed
// ACK timer), so there is no delayed ACK to turn off.
var DefaultTCP = TCPOptions{SACK: true, Delay: false, Recovery: 0}

// ApplyTCP sets o on s's TCP.
func ApplyTCP(s *stack.Stack, o TCPOptions) error {
	sack := tcpip.TCPSACKEnabled(o.SACK)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &sack); err != nil {
		return fmt.Errorf("TCP SACK: %v", err)
	}
	delay := tcpip.TCPDelayEnabled(o.Delay)
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &delay); err != nil {
		return fmt.Errorf("TCP delay (Nagle): %v", err)
	}
	rec := o.Recovery
	if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, &rec); err != nil {
		return fmt.Errorf("TCP loss detection: %v", err)
	}
	return nil
}

// ReadTCPOptions reads s's TCP options back.
func ReadTCPOptions(s *stack.Stack) (TCPOptions, error) {
	var sack tcpip.TCPSACKEnabled
	var delay tcpip.TCPDelayEnabled
	var rec tcpip.TCPRecovery
	for _, opt := range []tcpip.GettableTransportProtocolOption{&sack, &delay, &rec} {
		if err := s.TransportProtocolOption(tcp.ProtocolNumber, opt); err != nil {
			return TCPOptions{}, fmt.Errorf("reading %T: %v", opt, err)
		}
	}
	return TCPOptions{SACK: bool(sack), Delay: bool(delay), Recovery: rec}, nil
}

// NewGVisor builds a gVisor stack with IPv4, IPv6, TCP, UDP and ICMP, the
// TCP options o, and one NIC (nicID) on a channel endpoint that holds up
// to queue outgoing packets of at most mtu bytes for its reader; beyond
// that the stack's packets are dropped, as on a full interface queue
// (counted in the NIC's TxPacketsDroppedNoBufferSpace). notify, if not
// nil, is called on the stack's goroutine after each queued packet; it
// must not block. With segmentation on, the link declares host GSO: the
// stack's TCP then queues segments of up to 64 KiB with their checksums
// left to the reader, which must cut them with a gso.Segmenter (Reader
// does).
func NewGVisor(mtu, queue int, o TCPOptions, notify channel.Notification, segmentation bool) (*stack.Stack, *channel.Endpoint, error) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4, icmp.NewProtocol6},
		HandleLocal:        true,
	})
	ep := channel.New(queue, uint32(mtu), "")
	if notify != nil {
		ep.AddNotify(notify)
	}
	fail := func(err error) (*stack.Stack, *channel.Endpoint, error) {
		s.Close()
		s.Wait()
		ep.Close()
		return nil, nil, err
	}
	if err := ApplyTCP(s, o); err != nil {
		return fail(err)
	}
	var link stack.LinkEndpoint = ep
	if segmentation {
		link = gso.Endpoint{Endpoint: ep}
	}
	if err := s.CreateNIC(nicID, link); err != nil {
		return fail(fmt.Errorf("create NIC: %v", err))
	}
	return s, ep, nil
}

const nicID = 1
