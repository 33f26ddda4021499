package pnat

import (
	"encoding/binary"
	"net"
	"net/netip"

	"github.com/tarzan-net/tarzan/sdk/ippkt"
	"golang.org/x/net/icmp"
)

// listenPing opens an unprivileged ICMP ("ping") socket. The kernel
// assigns the echo identifier, so each client identifier gets its own
// socket, and replies reach only that socket.
func listenPing(network string) (net.PacketConn, error) {
	addr := "0.0.0.0"
	if network == "udp6" {
		addr = "::"
	}
	return icmp.ListenPacket(network, addr)
}

// echo serves one echo request by sending a real echo from the exit.
func (e *Exit) echo(pkt []byte, in ippkt.Info, tid uint64) {
	m, err := e.mappingFor(tid, in.Src)
	if err != nil {
		e.refuse(pkt, in, tid)
		return
	}
	body := pkt[in.PayloadOffset:in.Length]
	id := binary.BigEndian.Uint16(body[4:])
	key := flowKey{in.Proto, netip.AddrPortFrom(m.internal, id), netip.AddrPortFrom(in.Dst, 0)}
	f := e.flowByKey(key)
	if f == nil {
		if f = e.openEcho(pkt, in, tid, m, key, id); f == nil {
			return
		}
	}
	f.touch()
	m.touch()
	f.mu.Lock()
	pc := f.pc
	f.mu.Unlock()
	if pc == nil {
		return
	}
	dst := &net.UDPAddr{IP: in.Dst.Unmap().AsSlice()}
	if _, err := pc.WriteTo(body, dst); err == nil {
		e.stats.icmpEchoes.Add(1)
	}
}

// openEcho opens the flow and ping socket for one echo identifier and
// starts its reply reader.
func (e *Exit) openEcho(pkt []byte, in ippkt.Info, tid uint64, m *mapping, key flowKey, id uint16) *flow {
	network := "udp4"
	if in.Version == 6 {
		network = "udp6"
	}
	if e.tunnelFull(tid) {
		e.stats.rejectedLimit.Add(1)
		e.refuse(pkt, in, tid)
		return nil
	}
	if e.checkDial(netip.AddrPortFrom(in.Dst, 0)) != nil {
		e.refuse(pkt, in, tid)
		return nil
	}
	f, err := e.openFlow(m, kindICMP, key)
	if err != nil {
		e.refuse(pkt, in, tid)
		return nil
	}
	pc, err := e.listenPing(network)
	if err != nil {
		// net.ipv4.ping_group_range excludes us: count and drop.
		e.stats.icmpUnavailble.Add(1)
		e.releaseFlow(f)
		return nil
	}
	f.mu.Lock()
	f.pc = pc
	f.mu.Unlock()
	f.onAbort(func() { pc.Close() })
	if !e.track() {
		e.releaseFlow(f)
		return nil
	}
	inner, server, v6 := m.inner, in.Dst, in.Version == 6
	go func() {
		defer e.wg.Done()
		defer e.releaseFlow(f)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if ua, ok := from.(*net.UDPAddr); !ok || !sameAddr(ua.IP, server) || n < 8 {
				continue
			}
			msg := buf[:n]
			if (v6 && msg[0] != 129) || (!v6 && msg[0] != 0) {
				continue
			}
			binary.BigEndian.PutUint16(msg[4:], id) // the client's identifier
			b := getBuf()
			if *b, err = ippkt.AppendICMP((*b)[:0], server, inner, msg); err != nil {
				putBuf(b)
				continue
			}
			f.touch()
			m.touch()
			e.enqueue(b, tid)
		}
	}()
	return f
}

func sameAddr(ip net.IP, a netip.Addr) bool {
	b, ok := netip.AddrFromSlice(ip)
	return ok && b.Unmap() == a.Unmap()
}
