package testbed

import (
	"context"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// socksProxy is a minimal SOCKS5 proxy (no authentication, CONNECT to
// IPv4) on loopback, standing in for a node's SOCKS adapter.
func socksProxy(t *testing.T) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				b := make([]byte, 10)
				if _, err := io.ReadFull(c, b[:3]); err != nil {
					return
				}
				c.Write([]byte{5, 0})
				if _, err := io.ReadFull(c, b); err != nil || b[1] != 1 || b[3] != 1 {
					return
				}
				dst := netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), uint16(b[8])<<8|uint16(b[9]))
				up, err := net.Dial("tcp", dst.String())
				if err != nil {
					c.Write([]byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0})
					return
				}
				defer up.Close()
				c.Write([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 0})
				done := make(chan struct{})
				go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite(); close(done) }()
				io.Copy(c, up)
				<-done
			}()
		}
	}()
	return netip.MustParseAddrPort(l.Addr().String())
}

// runWorkload runs one initiator's flow through socksProxy to a server
// on loopback and returns what the meter and the client saw.
func runWorkload(t *testing.T, w Workload, d time.Duration) (*meter, clientResult) {
	t.Helper()
	proxy := socksProxy(t)
	var srvAddr netip.AddrPort
	listen := func(string) (net.Listener, error) { // a free port, not PortBase+i
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err == nil {
			srvAddr = netip.MustParseAddrPort(l.Addr().String())
		}
		return l, err
	}
	m := &meter{}
	start := time.Now().Add(50 * time.Millisecond)
	end := start.Add(d)
	m.from, m.to = start, end
	srv, err := startServer(listen, netip.MustParseAddr("127.0.0.1"), []int{0}, m)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	var dialer net.Dialer
	dial := func(ctx context.Context) (net.Conn, error) {
		return socksConnect(ctx, dialer.DialContext, proxy, srvAddr)
	}
	r := runClient(context.Background(), dial, w, rand.New(rand.NewPCG(1, 1)), start, end, m, 0)
	return m, r
}

func TestWorkloadOnOff(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 3 s")
	}
	m, r := runWorkload(t, Workload{Kind: "onoff", Rate: 100, On: 200 * time.Millisecond, Off: 200 * time.Millisecond}, time.Second)
	if r.Err != nil || r.Connects != 1 {
		t.Fatalf("client: %+v", r)
	}
	if r.Written < 10 || m.records != uint64(r.Written) {
		t.Errorf("client wrote %d records, server received %d (want ≥ 10, all of them)", r.Written, m.records)
	}
	for _, l := range m.latencies {
		if l < 0 || l > time.Second {
			t.Errorf("latency %v on loopback", l)
		}
	}
}

func TestWorkloadWeb(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 3 s")
	}
	m, r := runWorkload(t, Workload{Kind: "web", Rate: 10, Size: 3}, time.Second)
	if r.Err != nil || r.Connects != 1 || r.Written == 0 {
		t.Fatalf("client: %+v", r)
	}
	// Responses of 3 records on average, geometric: at least one each.
	if m.records < uint64(r.Written) {
		t.Errorf("%d requests got %d response records", r.Written, m.records)
	}
	if m.bytes != m.records*RecordSize {
		t.Errorf("%d bytes for %d records", m.bytes, m.records)
	}
}

func TestSocksConnectRefused(t *testing.T) {
	proxy := socksProxy(t)
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := netip.MustParseAddrPort(l.Addr().String())
	l.Close() // nobody listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var dialer net.Dialer
	if c, err := socksConnect(ctx, dialer.DialContext, proxy, dead); err == nil {
		c.Close()
		t.Fatal("CONNECT to a closed port succeeded")
	}
}
