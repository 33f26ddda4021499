package socks

// A fake exit for tests: every Flow the adapter emits gets its own
// in-memory gVisor stack playing "the Internet" (an HTTP server, a UDP
// echo server and a DNS resolver). Packets never leave the process.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/tarzan-net/tarzan/sdk/adapter"
)

var (
	webAddr4     = netip.MustParseAddr("198.18.0.1")
	webAddr6     = netip.MustParseAddr("2001:db8::1")
	dnsAddr      = adapter.DNSv4
	unreachAddr4 = netip.MustParseAddr("198.18.0.99") // answered with ICMP host unreachable
	routerAddr4  = netip.MustParseAddr("198.18.0.254")
	blackhole4   = netip.MustParseAddr("198.18.0.98") // dropped silently
)

// Names only the fake exit's resolver knows.
var fakeZone = map[string]netip.Addr{
	"web.tarzan.test.":      webAddr4,
	"web6.tarzan.test.":     webAddr6,
	"loopback.tarzan.test.": netip.MustParseAddr("127.0.0.1"),
}

type fakeExit struct {
	a          adapter.Adapter
	dnsQueries atomic.Int64

	mu   sync.Mutex
	nets map[uint64]*serverNet
	wg   sync.WaitGroup
}

type serverNet struct {
	flow uint64
	dev  tun.Device
	net  *netstack.Net
	http *http.Server
	udp  []net.PacketConn
}

// startFakeExit pumps packets between a (already open) and per-flow
// server stacks until a is closed; cleanup closes everything.
func startFakeExit(t *testing.T, a adapter.Adapter) *fakeExit {
	t.Helper()
	x := &fakeExit{a: a, nets: map[uint64]*serverNet{}}
	x.wg.Add(1)
	go x.fromClient()
	t.Cleanup(func() {
		a.Close() // ends fromClient
		x.mu.Lock()
		for _, sn := range x.nets {
			sn.http.Close()
			for _, c := range sn.udp {
				c.Close()
			}
			sn.dev.Close()
		}
		x.mu.Unlock()
		x.wg.Wait()
	})
	return x
}

func (x *fakeExit) flows() []uint64 {
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []uint64
	for f := range x.nets {
		out = append(out, f)
	}
	return out
}

func (x *fakeExit) fromClient() {
	defer x.wg.Done()
	pkts := make([]adapter.Packet, adapter.BatchSize)
	for i := range pkts {
		pkts[i].Buf = make([]byte, 1500)
	}
	for {
		n, err := x.a.ReadPackets(pkts)
		if err != nil {
			return
		}
		for _, p := range pkts[:n] {
			pkt := p.Buf[:p.N]
			if len(pkt) >= 20 && pkt[0]>>4 == 4 && netip.AddrFrom4([4]byte(pkt[16:20])) == blackhole4 {
				continue
			}
			if icmp := unreachableFor(pkt); icmp != nil {
				x.a.WritePackets([]adapter.Packet{{Buf: icmp, N: len(icmp), Flow: p.Flow}})
				continue
			}
			sn, err := x.net(p.Flow)
			if err != nil {
				panic(err)
			}
			sn.dev.Write([][]byte{pkt}, 0)
		}
	}
}

// net returns the server stack of flow, creating it and its services.
func (x *fakeExit) net(flow uint64) (*serverNet, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if sn := x.nets[flow]; sn != nil {
		return sn, nil
	}
	dev, tnet, err := netstack.CreateNetTUN([]netip.Addr{webAddr4, webAddr6, dnsAddr}, nil, defaultMTU)
	if err != nil {
		return nil, err
	}
	sn := &serverNet{flow: flow, dev: dev, net: tnet}
	ln, err := tnet.ListenTCPAddrPort(netip.AddrPortFrom(netip.Addr{}, 80))
	if err != nil {
		return nil, err
	}
	sn.http = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello flow=%d from=%s", flow, r.RemoteAddr)
	})}
	x.wg.Add(1)
	go func() { defer x.wg.Done(); sn.http.Serve(ln) }()

	echo, err := tnet.ListenUDPAddrPort(netip.AddrPortFrom(webAddr4, 7))
	if err != nil {
		return nil, err
	}
	dns, err := tnet.ListenUDPAddrPort(netip.AddrPortFrom(dnsAddr, 53))
	if err != nil {
		return nil, err
	}
	sn.udp = []net.PacketConn{echo, dns}
	x.wg.Add(3)
	go func() { defer x.wg.Done(); serveUDP(echo, func(b []byte) []byte { return b }) }()
	go func() { defer x.wg.Done(); serveUDP(dns, x.answer) }()
	go func() { defer x.wg.Done(); x.toClient(sn) }()
	x.nets[flow] = sn
	return sn, nil
}

func (x *fakeExit) toClient(sn *serverNet) {
	bufs := [][]byte{make([]byte, 1500)}
	sizes := []int{0}
	for {
		n, err := sn.dev.Read(bufs, sizes, 0)
		if err != nil {
			return
		}
		if n == 1 {
			x.a.WritePackets([]adapter.Packet{{Buf: bufs[0], N: sizes[0], Flow: sn.flow}})
		}
	}
}

func serveUDP(c net.PacketConn, handle func([]byte) []byte) {
	buf := make([]byte, 65535)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		if out := handle(buf[:n]); out != nil {
			c.WriteTo(out, from)
		}
	}
}

// answer is a tiny authoritative resolver for fakeZone.
func (x *fakeExit) answer(q []byte) []byte {
	x.dnsQueries.Add(1)
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil {
		return nil
	}
	qs, err := p.AllQuestions()
	if err != nil || len(qs) != 1 {
		return nil
	}
	addr, known := fakeZone[qs[0].Name.String()]
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionAvailable: true}
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.StartQuestions()
	b.Question(qs[0])
	b.StartAnswers()
	hdr := dnsmessage.ResourceHeader{Name: qs[0].Name, Class: dnsmessage.ClassINET, TTL: 60}
	switch {
	case known && addr.Is4() && qs[0].Type == dnsmessage.TypeA:
		b.AResource(hdr, dnsmessage.AResource{A: addr.As4()})
	case known && addr.Is6() && qs[0].Type == dnsmessage.TypeAAAA:
		b.AAAAResource(hdr, dnsmessage.AAAAResource{AAAA: addr.As16()})
	}
	out, err := b.Finish()
	if err != nil {
		return nil
	}
	return out
}

// unreachableFor returns an ICMPv4 host-unreachable reply from a router
// if pkt is IPv4 to unreachAddr4, else nil.
func unreachableFor(pkt []byte) []byte {
	if len(pkt) < 20 || pkt[0]>>4 != 4 {
		return nil
	}
	if netip.AddrFrom4([4]byte(pkt[16:20])) != unreachAddr4 {
		return nil
	}
	ihl := int(pkt[0]&0x0f) * 4
	quote := pkt[:min(len(pkt), ihl+8)]
	icmp := append([]byte{3, 1, 0, 0, 0, 0, 0, 0}, quote...) // type 3 code 1
	binary.BigEndian.PutUint16(icmp[2:], checksum(icmp))
	ip := make([]byte, 20, 20+len(icmp))
	ip[0], ip[8], ip[9] = 0x45, 64, 1
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(icmp)))
	src := routerAddr4.As4()
	copy(ip[12:16], src[:])
	copy(ip[16:20], pkt[12:16])
	binary.BigEndian.PutUint16(ip[10:], checksum(ip))
	return append(ip, icmp...)
}

func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

var errShortReply = errors.New("short SOCKS reply")
