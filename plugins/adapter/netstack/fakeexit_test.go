package netstack

// A fake exit for tests: every Flow the adapter emits gets its own
// in-memory gVisor stack playing "the Internet" (an HTTP server, a UDP
// echo server and the in-tunnel DNS resolver). Packets never leave the
// process. Like plugins/adapter/socks's fake exit, trimmed to what these
// tests need.

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
	"golang.zx2c4.com/wireguard/tun"
	wgnet "golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/ippkt"
)

var (
	webAddr4 = netip.MustParseAddr("198.18.0.1")
	webAddr6 = netip.MustParseAddr("2001:db8::1")
	dnsAddr4 = adapter.DNSv4
	dnsAddr6 = adapter.DNSv6
)

// Names only the fake exit's resolver knows: a name that resolves proves
// the query went through the tunnel.
var fakeZone = map[string]netip.Addr{
	"web.tarzan.test.":      webAddr4,
	"web6.tarzan.test.":     webAddr6,
	"loopback.tarzan.test.": netip.MustParseAddr("127.0.0.1"),
}

type fakeExit struct {
	a           adapter.Adapter
	dnsQueries  atomic.Int64
	unreachable netip.Addr // packets to it are answered as the core answers a flow it has no tunnel for

	mu   sync.Mutex
	nets map[uint64]*serverNet
	wg   sync.WaitGroup
}

type serverNet struct {
	flow uint64
	dev  tun.Device
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

func (x *fakeExit) flows() map[uint64]bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := map[uint64]bool{}
	for f := range x.nets {
		out[f] = true
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
			if x.unreachable.IsValid() && len(pkt) >= 20 && pkt[0]>>4 == 4 && netip.AddrFrom4([4]byte(pkt[16:20])) == x.unreachable {
				if icmp, err := ippkt.Unreachable(nil, pkt); err == nil {
					x.a.WritePackets([]adapter.Packet{{Buf: icmp, N: len(icmp), Flow: p.Flow}})
				}
				continue
			}
			sn, err := x.net(p.Flow)
			if err != nil {
				panic(err)
			}
			sn.dev.Write([][]byte{p.Buf[:p.N]}, 0)
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
	dev, tnet, err := wgnet.CreateNetTUN([]netip.Addr{webAddr4, webAddr6, dnsAddr4, dnsAddr6}, nil, adapter.InnerMTU)
	if err != nil {
		return nil, err
	}
	sn := &serverNet{flow: flow, dev: dev}
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
	sn.udp = append(sn.udp, echo)
	x.wg.Add(1)
	go func() { defer x.wg.Done(); serveUDP(echo, func(b []byte) []byte { return b }) }()
	for _, d := range []netip.Addr{dnsAddr4, dnsAddr6} {
		dns, err := tnet.ListenUDPAddrPort(netip.AddrPortFrom(d, 53))
		if err != nil {
			return nil, err
		}
		sn.udp = append(sn.udp, dns)
		x.wg.Add(1)
		go func() { defer x.wg.Done(); serveUDP(dns, x.answer) }()
	}
	x.wg.Add(1)
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
