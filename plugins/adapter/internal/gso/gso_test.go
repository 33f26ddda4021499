package gso

import (
	"bytes"
	"context"
	"io"
	"net/netip"
	"sync"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"github.com/tarzan-net/tarzan/sdk/ippkt"
)

// superPacket builds what gVisor's TCP hands an Endpoint: IP and TCP
// headers with a partial checksum and payload bytes of data, MSS mss.
func superPacket(v6 bool, data []byte, mss int, flags header.TCPFlags, id uint16) *stack.PacketBuffer {
	pkb := stack.NewPacketBuffer(stack.PacketBufferOptions{
		ReserveHeaderBytes: header.IPv6MinimumSize + header.TCPMinimumSize + 12,
		Payload:            buffer.MakeWithData(append([]byte(nil), data...)),
	})
	th := header.TCP(pkb.TransportHeader().Push(header.TCPMinimumSize + 12))
	th.Encode(&header.TCPFields{SrcPort: 80, DstPort: 40000, SeqNum: 0xfffff000, AckNum: 77,
		DataOffset: header.TCPMinimumSize + 12, Flags: flags, WindowSize: 1000})
	copy(th[header.TCPMinimumSize:], []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}) // NOP NOP timestamps
	th.SetChecksum(0x1234)                                                        // partial: whatever gVisor left
	if v6 {
		ip := header.IPv6(pkb.NetworkHeader().Push(header.IPv6MinimumSize))
		ip.Encode(&header.IPv6Fields{PayloadLength: 0xffff, TransportProtocol: header.TCPProtocolNumber, HopLimit: 64,
			SrcAddr: tcpip.AddrFrom16Slice(netip.MustParseAddr("fd00::1").AsSlice()),
			DstAddr: tcpip.AddrFrom16Slice(netip.MustParseAddr("fd00::2").AsSlice())})
		pkb.GSOOptions = stack.GSO{Type: stack.GSOTCPv6, NeedsCsum: true, MSS: uint16(mss), L3HdrLen: header.IPv6MinimumSize}
	} else {
		ip := header.IPv4(pkb.NetworkHeader().Push(header.IPv4MinimumSize))
		ip.Encode(&header.IPv4Fields{TotalLength: 0xffff, ID: id, Flags: header.IPv4FlagDontFragment, TTL: 64,
			Protocol: uint8(header.TCPProtocolNumber),
			SrcAddr:  tcpip.AddrFrom4([4]byte{10, 0, 0, 1}), DstAddr: tcpip.AddrFrom4([4]byte{10, 0, 0, 2})})
		pkb.GSOOptions = stack.GSO{Type: stack.GSOTCPv4, NeedsCsum: true, MSS: uint16(mss), L3HdrLen: header.IPv4MinimumSize}
	}
	return pkb
}

func TestSegmenterCuts(t *testing.T) {
	const mss = 1000
	for _, v6 := range []bool{false, true} {
		for _, size := range []int{0, 1, mss, mss + 1, 10*mss - 7, 60000} {
			data := make([]byte, size)
			for i := range data {
				data[i] = byte(i*7 + size)
			}
			flags := header.TCPFlagAck | header.TCPFlagPsh | header.TCPFlagFin | header.TCPFlagCwr
			pkb := superPacket(v6, data, mss, flags, 65534)
			if !Needs(pkb) {
				t.Fatal("Needs refused a GSO packet")
			}
			var s Segmenter
			if !s.Load(pkb) {
				t.Fatal("Load refused")
			}
			var got []byte
			buf := make([]byte, 2048)
			want := max(1, (size+mss-1)/mss)
			for i := 0; !s.Done(); i++ {
				wantLen := s.Len()
				n := s.Next(buf)
				if n != wantLen || n == 0 {
					t.Fatalf("v6=%v size %d packet %d: %d bytes, Len said %d", v6, size, i, n, wantLen)
				}
				p := buf[:n]
				if err := ippkt.Verify(p); err != nil {
					t.Fatalf("v6=%v size %d packet %d: %v", v6, size, i, err)
				}
				in, err := ippkt.Parse(p)
				if err != nil || in.Length != n {
					t.Fatalf("packet %d: parse %v, length %d of %d", i, err, in.Length, n)
				}
				th := header.TCP(p[in.PayloadOffset:])
				payload := p[in.PayloadOffset+int(th.DataOffset()):]
				if len(payload) > mss {
					t.Fatalf("packet %d: %d bytes of payload, MSS %d", i, len(payload), mss)
				}
				if seq := th.SequenceNumber(); seq != 0xfffff000+uint32(len(got)) {
					t.Fatalf("packet %d: seq %#x", i, seq)
				}
				last := i == want-1
				f := th.Flags()
				if (f&header.TCPFlagFin != 0) != last || (f&header.TCPFlagPsh != 0) != last ||
					(f&header.TCPFlagCwr != 0) != (i == 0) || f&header.TCPFlagAck == 0 {
					t.Fatalf("packet %d of %d: flags %v", i, want, f)
				}
				if !v6 {
					if id := header.IPv4(p).ID(); id != uint16(65534+i) {
						t.Fatalf("packet %d: IP ID %d", i, id)
					}
				}
				if !bytes.Equal(th[header.TCPMinimumSize:th.DataOffset()], []byte{1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2}) {
					t.Fatalf("packet %d: options %x", i, th[header.TCPMinimumSize:th.DataOffset()])
				}
				got = append(got, payload...)
				if i >= want {
					t.Fatalf("more than %d packets", want)
				}
			}
			if !bytes.Equal(got, data) {
				t.Fatalf("v6=%v size %d: payload differs (%d bytes back)", v6, size, len(got))
			}
		}
	}
}

// A destination too short for a packet skips that packet only.
func TestSegmenterShortBuffer(t *testing.T) {
	data := bytes.Repeat([]byte{7}, 2500)
	var s Segmenter
	if !s.Load(superPacket(false, data, 1000, header.TCPFlagAck, 1)) {
		t.Fatal("Load refused")
	}
	if n := s.Next(make([]byte, 100)); n != 0 {
		t.Fatalf("Next into 100 bytes: %d", n)
	}
	buf := make([]byte, 2048)
	n := s.Next(buf)
	if th := header.TCP(buf[20:n]); th.SequenceNumber() != 0xfffff000+1000 || n != 20+32+1000 {
		t.Fatalf("second packet: %d bytes, seq %#x", n, th.SequenceNumber())
	}
	if n := s.Next(buf); n != 20+32+500 || !s.Done() {
		t.Fatalf("last packet: %d bytes, done %v", n, s.Done())
	}
}

// TestThroughStacks sends 1 MiB from a stack on an Endpoint to a plain
// stack, which checks every checksum itself, through a link that cuts
// what the first writes with a Segmenter: the bytes arrive whole, no
// packet exceeds the MTU, and the sender's TCP sent far fewer segments
// than packets went over the link.
func TestThroughStacks(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		const mtu = 1280
		a, aep := newStack(t, mtu, true, v6)
		b, bep := newStack(t, mtu, false, v6)
		var packets, large, tooBig int
		var wg sync.WaitGroup
		ctx, cancel := context.WithCancel(context.Background())
		wg.Add(2)
		go func() { // a → b, cut
			defer wg.Done()
			var s Segmenter
			buf := make([]byte, 2048)
			for {
				pkb := aep.ReadContext(ctx)
				if pkb == nil {
					return
				}
				if !Needs(pkb) {
					n, _ := Copy(buf, pkb)
					pkb.DecRef()
					inject(bep, buf[:n])
					continue
				}
				if pkb.Size() > mtu {
					large++
				}
				if !s.Load(pkb) {
					t.Error("Load refused a packet of the stack")
					continue
				}
				for !s.Done() {
					n := s.Next(buf)
					if n > mtu {
						tooBig++
					}
					packets++
					inject(bep, buf[:n])
				}
			}
		}()
		go func() { // b → a
			defer wg.Done()
			buf := make([]byte, 2048)
			for {
				pkb := bep.ReadContext(ctx)
				if pkb == nil {
					return
				}
				n, _ := Copy(buf, pkb)
				pkb.DecRef()
				inject(aep, buf[:n])
			}
		}()
		bAddr := tcpip.FullAddress{NIC: 1, Addr: addr(v6, 2), Port: 80}
		proto := ipv4.ProtocolNumber
		if v6 {
			proto = ipv6.ProtocolNumber
		}
		ln, err := gonet.ListenTCP(b, bAddr, proto)
		if err != nil {
			t.Fatal(err)
		}
		const size = 1 << 20
		want := make([]byte, size)
		for i := range want {
			want[i] = byte(i * 13)
		}
		done := make(chan []byte, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				done <- nil
				return
			}
			defer c.Close()
			got, _ := io.ReadAll(c)
			done <- got
		}()
		dctx, dcancel := context.WithTimeout(ctx, 20*time.Second)
		c, err := gonet.DialContextTCP(dctx, a, bAddr, proto)
		dcancel()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(want); err != nil {
			t.Fatal(err)
		}
		c.Close()
		var got []byte
		select {
		case got = <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("transfer did not finish")
		}
		ln.Close()
		cancel()
		a.Close()
		b.Close()
		wg.Wait()
		if !bytes.Equal(got, want) {
			t.Fatalf("v6=%v: %d bytes arrived, want %d identical", v6, len(got), len(want))
		}
		bs := b.Stats()
		if n := bs.TCP.ChecksumErrors.Value() + bs.IP.MalformedPacketsReceived.Value(); n != 0 {
			t.Fatalf("v6=%v: the receiver saw %d bad packets", v6, n)
		}
		sent := a.Stats().TCP.SegmentsSent.Value()
		t.Logf("v6=%v: %d TCP segments of the sender became %d packets; %d were over the MTU", v6, sent, packets, large)
		if tooBig > 0 || large == 0 || sent*4 > uint64(packets) {
			t.Fatalf("v6=%v: %d packets over the MTU, %d large segments, %d segments sent for %d packets", v6, tooBig, large, sent, packets)
		}
	}
}

func addr(v6 bool, last byte) tcpip.Address {
	if v6 {
		return tcpip.AddrFrom16([16]byte{0xfd, 15: last})
	}
	return tcpip.AddrFrom4([4]byte{10, 0, 0, last})
}

func newStack(t *testing.T, mtu int, seg, v6 bool) (*stack.Stack, *channel.Endpoint) {
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, ipv6.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol},
	})
	ep := channel.New(4096, uint32(mtu), "")
	var link stack.LinkEndpoint = ep
	if seg {
		link = Endpoint{Endpoint: ep}
	}
	if err := s.CreateNIC(1, link); err != nil {
		t.Fatal(err)
	}
	last := byte(2)
	if seg {
		last = 1
	}
	proto := ipv4.ProtocolNumber
	if v6 {
		proto = ipv6.ProtocolNumber
	}
	if err := s.AddProtocolAddress(1, tcpip.ProtocolAddress{Protocol: proto, AddressWithPrefix: addr(v6, last).WithPrefix()}, stack.AddressProperties{}); err != nil {
		t.Fatal(err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: 1}, {Destination: header.IPv6EmptySubnet, NIC: 1}})
	return s, ep
}

func inject(ep *channel.Endpoint, p []byte) {
	proto := header.IPv4ProtocolNumber
	if p[0]>>4 == 6 {
		proto = header.IPv6ProtocolNumber
	}
	pkb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(append([]byte(nil), p...))})
	ep.InjectInbound(proto, pkb)
	pkb.DecRef()
}
