package stackgroup

import (
	"bytes"
	"context"
	"io"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/ippkt"
)

var serverAddr = netip.MustParseAddrPort("198.51.100.7:80")

// A download into a group's stack: the server's segments reach Stack.Write
// in batches, as the socks adapter's WritePackets hands them over. The
// bytes arrive intact, and GRO joined segments (the client's TCP saw
// fewer segments than were written).
func TestGROJoinsDownload(t *testing.T) {
	closed := make(chan struct{})
	r := NewReader(closed)
	cl, err := New(r, 1, []netip.Addr{clientAddr}, nil, 1280)
	if err != nil {
		t.Fatal(err)
	}
	srv, srvEP, err := NewGVisor(1280, Queue, DefaultTCP, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddrFromSlice(serverAddr.Addr().AsSlice()).WithPrefix()}
	if err := srv.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
		t.Fatal(err)
	}
	srv.AddRoute(tcpip.Route{Destination: header.IPv4EmptySubnet, NIC: nicID})
	ln, err := gonet.ListenTCP(srv, tcpip.FullAddress{NIC: nicID, Addr: pa.AddressWithPrefix.Address, Port: serverAddr.Port()}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	defer func() {
		close(closed)
		ln.Close()
		cl.Close()
		srv.Close()
		srv.Wait()
		srvEP.Close()
		wg.Wait()
	}()
	// client → server: the Reader's packets into the server's stack.
	wg.Add(2)
	go func() {
		defer wg.Done()
		pkts := make([]adapter.Packet, 16)
		for i := range pkts {
			pkts[i].Buf = make([]byte, 2048)
		}
		for {
			n, err := r.Read(pkts)
			if err != nil {
				return
			}
			for _, p := range pkts[:n] {
				pkb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(p.Buf[:p.N])})
				srvEP.InjectInbound(header.IPv4ProtocolNumber, pkb)
				pkb.DecRef()
			}
		}
	}()
	// server → client: whatever is queued, in one Write per batch.
	var written atomic.Int64
	go func() {
		defer wg.Done()
		for {
			pkb := srvEP.ReadContext(ctxUntil(closed))
			if pkb == nil {
				return
			}
			var batch [][]byte
			for pkb != nil && len(batch) < 64 {
				var b []byte
				for _, s := range pkb.AsSlices() {
					b = append(b, s...)
				}
				pkb.DecRef()
				batch = append(batch, b)
				pkb = srvEP.Read()
			}
			written.Add(int64(len(batch)))
			cl.Write(batch)
		}
	}()
	payload := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			return
		}
		c.Write(payload)
		c.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := cl.DialTCP(ctx, serverAddr)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("read %d of %d bytes, equal %v, err %v", len(got), len(payload), bytes.Equal(got, payload), err)
	}
	segs := cl.s.Stats().TCP.ValidSegmentsReceived.Value()
	t.Logf("server wrote %d packets; the client's TCP received %d segments", written.Load(), segs)
	if segs >= uint64(written.Load()) {
		t.Errorf("no segment was joined: %d segments for %d packets", segs, written.Load())
	}
	if cl.BadChecksum() != 0 {
		t.Errorf("BadChecksum = %d", cl.BadChecksum())
	}
}

// A packet with a bad checksum is dropped and counted, whether GRO takes
// it (TCP) or Write checks it (UDP).
func TestWriteDropsBadChecksums(t *testing.T) {
	closed := make(chan struct{})
	defer close(closed)
	s, err := New(NewReader(closed), 1, []netip.Addr{clientAddr}, nil, 1280)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	src := serverAddr.Addr()
	udp, err := ippkt.AppendUDP(nil, netip.AddrPortFrom(src, 53), netip.AddrPortFrom(clientAddr, 5353), []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	udp[len(udp)-1] ^= 1
	syn := make([]byte, header.IPv4MinimumSize+header.TCPMinimumSize)
	ip := header.IPv4(syn)
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(syn)), TTL: 64, Protocol: uint8(tcp.ProtocolNumber),
		SrcAddr: tcpip.AddrFromSlice(src.AsSlice()), DstAddr: tcpip.AddrFromSlice(clientAddr.AsSlice())})
	ip.SetChecksum(^ip.CalculateChecksum())
	th := header.TCP(syn[header.IPv4MinimumSize:])
	th.Encode(&header.TCPFields{SrcPort: 80, DstPort: 4000, SeqNum: 1, DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagSyn, WindowSize: 1000})
	th.SetChecksum(0x1234) // wrong
	s.Write([][]byte{udp, syn})
	if got := s.BadChecksum(); got != 2 {
		t.Fatalf("BadChecksum = %d; want 2", got)
	}
}
