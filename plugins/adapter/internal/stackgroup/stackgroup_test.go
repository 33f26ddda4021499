package stackgroup

import (
	"context"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"golang.org/x/net/dns/dnsmessage"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

var (
	clientAddr = netip.MustParseAddr("100.64.0.2")
	dnsAddr    = netip.MustParseAddr("100.64.0.53")
)

// TestTCPOptionsApplied reads the TCP options back from a group's stack:
// SACK on (gVisor's default is off), Nagle off, RACK off.
func TestTCPOptionsApplied(t *testing.T) {
	closed := make(chan struct{})
	defer close(closed)
	s, err := New(NewReader(closed), 1, []netip.Addr{clientAddr}, []netip.Addr{dnsAddr}, 1280)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := ReadTCPOptions(s.GVisor())
	if err != nil {
		t.Fatal(err)
	}
	if got != DefaultTCP || !got.SACK || got.Delay || got.Recovery != 0 {
		t.Fatalf("TCP options %+v, want %+v", got, DefaultTCP)
	}
}

// fakeDNS is a resolver at dnsAddr in a stack of its own, wired to the
// groups' stacks through a Reader, as a tunnel and an exit would be.
type fakeDNS struct {
	t       *testing.T
	r       *Reader
	closed  chan struct{}
	srv     *stack.Stack
	srvEP   *channel.Endpoint
	queries atomic.Int64
	ttl     atomic.Uint32
	wg      sync.WaitGroup

	mu         sync.Mutex
	stacks     map[uint64]*Stack
	flowOfPort map[uint16]uint64 // a query's source port → its group
}

func newFakeDNS(t *testing.T) *fakeDNS {
	f := &fakeDNS{t: t, closed: make(chan struct{}), stacks: map[uint64]*Stack{}, flowOfPort: map[uint16]uint64{}}
	f.ttl.Store(30)
	f.r = NewReader(f.closed)
	srv, ep, err := NewGVisor(1280, Queue, DefaultTCP, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	f.srv, f.srvEP = srv, ep
	pa := tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddrFromSlice(dnsAddr.AsSlice()).WithPrefix()}
	if err := srv.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
		t.Fatal(err)
	}
	srv.AddRoute(tcpip.Route{Destination: header.IPv4EmptySubnet, NIC: nicID})
	fa := tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFromSlice(dnsAddr.AsSlice()), Port: 53}
	pc, err := gonet.DialUDP(srv, &fa, nil, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	f.wg.Add(3)
	go func() { defer f.wg.Done(); f.serve(pc) }()
	go func() { defer f.wg.Done(); f.toServer() }()
	go func() { defer f.wg.Done(); f.toClients() }()
	t.Cleanup(func() {
		close(f.closed)
		pc.Close()
		f.mu.Lock()
		for _, s := range f.stacks {
			s.Close()
		}
		f.mu.Unlock()
		srv.Close()
		srv.Wait()
		ep.Close()
		f.wg.Wait()
	})
	return f
}

// group opens an isolation group's stack (flow) on the fake network.
func (f *fakeDNS) group(flow uint64) *Stack {
	s, err := New(f.r, flow, []netip.Addr{clientAddr}, []netip.Addr{dnsAddr}, 1280)
	if err != nil {
		f.t.Fatal(err)
	}
	f.mu.Lock()
	f.stacks[flow] = s
	f.mu.Unlock()
	return s
}

// toServer moves the groups' packets (Reader.Read, as ReadPackets) into
// the server's stack, remembering which group sent to which port.
func (f *fakeDNS) toServer() {
	pkts := make([]adapter.Packet, 8)
	for i := range pkts {
		pkts[i].Buf = make([]byte, 2048)
	}
	for {
		n, err := f.r.Read(pkts)
		if err != nil {
			return
		}
		for _, p := range pkts[:n] {
			b := p.Buf[:p.N]
			// Tag the source port with the flow, so replies find their
			// group: every group has the same inner address.
			ip := header.IPv4(b)
			udp := header.UDP(ip.Payload())
			f.mu.Lock()
			f.flowOfPort[udp.SourcePort()] = p.Flow
			f.mu.Unlock()
			pkb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithData(b)})
			f.srvEP.InjectInbound(header.IPv4ProtocolNumber, pkb)
			pkb.DecRef()
		}
	}
}

func (f *fakeDNS) toClients() {
	for {
		pkb := f.srvEP.ReadContext(ctxUntil(f.closed))
		if pkb == nil {
			return
		}
		var b []byte
		for _, s := range pkb.AsSlices() {
			b = append(b, s...)
		}
		pkb.DecRef()
		udp := header.UDP(header.IPv4(b).Payload())
		f.mu.Lock()
		s := f.stacks[f.flowOfPort[udp.DestinationPort()]]
		f.mu.Unlock()
		if s != nil {
			s.Write([][]byte{b})
		}
	}
}

func ctxUntil(c chan struct{}) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-c; cancel() }()
	return ctx
}

// serve answers A queries: "nx.example" does not exist, "zero.example"
// has TTL 0, anything else is 192.0.2.N with the current TTL.
func (f *fakeDNS) serve(pc *gonet.UDPConn) {
	b := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(b)
		if err != nil {
			return
		}
		f.queries.Add(1)
		var m dnsmessage.Message
		if m.Unpack(b[:n]) != nil || len(m.Questions) != 1 {
			continue
		}
		q := m.Questions[0]
		rh := dnsmessage.Header{ID: m.ID, Response: true, RecursionAvailable: true}
		name := q.Name.String()
		if name == "nx.example." {
			rh.RCode = dnsmessage.RCodeNameError
		}
		out := dnsmessage.NewBuilder(nil, rh)
		out.EnableCompression()
		out.StartQuestions()
		out.Question(q)
		out.StartAnswers()
		if rh.RCode == 0 && q.Type == dnsmessage.TypeA {
			ttl := f.ttl.Load()
			if name == "zero.example." {
				ttl = 0
			}
			hdr := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: ttl}
			out.AResource(hdr, dnsmessage.AResource{A: [4]byte{192, 0, 2, byte(len(name))}})
		}
		resp, _ := out.Finish()
		pc.WriteTo(resp, from)
	}
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func lookup(t *testing.T, s *Stack, host string) []netip.Addr {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a, err := s.LookupHost(ctx, host)
	if err != nil {
		t.Fatalf("LookupHost(%s): %v", host, err)
	}
	return a
}

// TestDNSCacheTTL: an answer is reused for its TTL, then asked again; a
// TTL above MaxTTL is capped; TTL 0 and a missing name are never cached.
func TestDNSCacheTTL(t *testing.T) {
	f := newFakeDNS(t)
	s := f.group(1)
	c := &clock{now: time.Unix(1e9, 0)}
	s.dns.now = c.Now

	first := lookup(t, s, "www.example")
	if len(first) != 1 || f.queries.Load() != 1 {
		t.Fatalf("first lookup: %v, %d queries", first, f.queries.Load())
	}
	c.add(29 * time.Second)
	if again := lookup(t, s, "WWW.example."); again[0] != first[0] || f.queries.Load() != 1 {
		t.Fatalf("within the TTL: %v, %d queries, want the cached answer and 1 query", again, f.queries.Load())
	}
	if q, h := s.DNSStats(); q != 1 || h != 1 {
		t.Fatalf("DNSStats = %d queries, %d hits; want 1, 1", q, h)
	}
	c.add(2 * time.Second) // 31 s: expired
	lookup(t, s, "www.example")
	if f.queries.Load() != 2 {
		t.Fatalf("after the TTL: %d queries, want 2", f.queries.Load())
	}

	f.ttl.Store(86400) // capped at MaxTTL
	lookup(t, s, "long.example")
	c.add(MaxTTL - time.Second)
	lookup(t, s, "long.example")
	if f.queries.Load() != 3 {
		t.Fatalf("within MaxTTL: %d queries, want 3", f.queries.Load())
	}
	c.add(2 * time.Second)
	lookup(t, s, "long.example")
	if f.queries.Load() != 4 {
		t.Fatalf("beyond MaxTTL: %d queries, want 4 (TTL not capped)", f.queries.Load())
	}

	lookup(t, s, "zero.example")
	lookup(t, s, "zero.example")
	if f.queries.Load() != 6 {
		t.Fatalf("TTL 0: %d queries, want 6 (never cached)", f.queries.Load())
	}
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := s.LookupHost(ctx, "nx.example")
		cancel()
		var de *net.DNSError
		if err == nil || !errorsAs(err, &de) || !de.IsNotFound {
			t.Fatalf("nx.example: err %v, want a not-found DNSError", err)
		}
	}
	if f.queries.Load() != 8 {
		t.Fatalf("missing name: %d queries, want 8 (never cached)", f.queries.Load())
	}
}

func errorsAs(err error, de **net.DNSError) bool {
	d, ok := err.(*net.DNSError)
	*de = d
	return ok
}

// TestDNSCacheIsolated: one group's answer is never used by another
// group, and a group opened again starts empty.
func TestDNSCacheIsolated(t *testing.T) {
	f := newFakeDNS(t)
	a, b := f.group(1), f.group(2)
	lookup(t, a, "shared.example")
	lookup(t, b, "shared.example")
	if f.queries.Load() != 2 {
		t.Fatalf("two groups, one name: %d queries, want 2 (caches are per group)", f.queries.Load())
	}
	lookup(t, a, "shared.example")
	lookup(t, b, "shared.example")
	if f.queries.Load() != 2 {
		t.Fatalf("repeat in each group: %d queries, want still 2", f.queries.Load())
	}
	a.Close()
	a2 := f.group(3)
	lookup(t, a2, "shared.example")
	if f.queries.Load() != 3 {
		t.Fatalf("a new group: %d queries, want 3 (its cache starts empty)", f.queries.Load())
	}
}

// TestDNSCacheBounded: the cache never holds more than CacheSize names;
// the one expiring first makes room.
func TestDNSCacheBounded(t *testing.T) {
	r := newResolver(&Stack{V4: clientAddr}, nil)
	now := time.Unix(1e9, 0)
	r.now = func() time.Time { return now }
	for i := range CacheSize + 50 {
		r.store(string(rune('a'+i%26))+time.Duration(i).String(), []netip.Addr{clientAddr}, time.Duration(i+1)*time.Second)
	}
	if n := r.cacheLen(); n != CacheSize {
		t.Fatalf("cache holds %d names, want %d", n, CacheSize)
	}
	// The 50 shortest-lived went first.
	if _, ok := r.cached("a0s"); ok {
		t.Fatal("the entry expiring first survived")
	}
	last := CacheSize + 49
	if _, ok := r.cached(string(rune('a'+last%26)) + time.Duration(last).String()); !ok {
		t.Fatal("the newest entry was evicted")
	}
}

// TestReaderTakesEveryGroup: packets of several groups come out of one
// Read, each with its group's Flow, and Read wakes for a packet queued
// while it waits.
func TestReaderTakesEveryGroup(t *testing.T) {
	closed := make(chan struct{})
	r := NewReader(closed)
	var stacks []*Stack
	for flow := uint64(1); flow <= 3; flow++ {
		s, err := New(r, flow, []netip.Addr{clientAddr}, nil, 1280)
		if err != nil {
			t.Fatal(err)
		}
		stacks = append(stacks, s)
	}
	pkts := make([]adapter.Packet, 8)
	for i := range pkts {
		pkts[i].Buf = make([]byte, 2048)
	}
	got := make(chan map[uint64]int, 1)
	go func() {
		seen := map[uint64]int{}
		for len(seen) < 3 {
			n, err := r.Read(pkts)
			if err != nil {
				break
			}
			for _, p := range pkts[:n] {
				seen[p.Flow]++
			}
		}
		got <- seen
	}()
	time.Sleep(10 * time.Millisecond) // let Read wait first
	for _, s := range stacks {
		c, err := s.DialUDP(netip.MustParseAddrPort("198.51.100.1:9"))
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("x"))
		c.Close()
	}
	select {
	case seen := <-got:
		if len(seen) != 3 {
			t.Fatalf("flows seen %v, want 1, 2 and 3", seen)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not return the packets")
	}
	for _, s := range stacks {
		s.Close()
	}
	close(closed)
	if _, err := r.Read(pkts); err != adapter.ErrClosed {
		t.Fatalf("Read after close: %v, want ErrClosed", err)
	}
}
