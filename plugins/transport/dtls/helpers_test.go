package dtls

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const wait = 5 * time.Second

// peer is a listening transport with a background reader.
type peer struct {
	tr   transport.Transport
	addr netip.AddrPort
	got  chan transport.Packet
	done chan struct{}
}

func (p *peer) stats() Stats { return p.tr.(*dtlsTransport).Stats() }

// identity makes node credentials the way the core will.
func identity(t testing.TB) (transport.Credentials, ed25519.PublicKey) {
	t.Helper()
	idPub, idKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	certPub, certKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return transport.Credentials{CertKey: certKey, IdentityKey: idPub, Endorsement: transport.Endorse(idKey, certPub)}, idPub
}

// newPeer starts a transport on addr ("" is 127.0.0.1:0); setup runs
// before Listen.
func newPeer(t testing.TB, addr string, setup func(tr transport.Transport)) *peer {
	t.Helper()
	tr, err := New(nil)
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(tr)
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	bound, err := tr.Listen(netip.MustParseAddrPort(addr))
	if err != nil {
		tr.Close()
		t.Fatal(err)
	}
	p := &peer{tr: tr, addr: bound, got: make(chan transport.Packet, 4096), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		pkts := make([]transport.Packet, transport.BatchSize)
		for i := range pkts {
			pkts[i].Buf = make([]byte, transport.MaxDatagram+64)
		}
		for {
			n, err := tr.ReadBatch(pkts)
			if err != nil {
				if !errors.Is(err, transport.ErrClosed) {
					t.Errorf("ReadBatch: %v", err)
				}
				return
			}
			for _, q := range pkts[:n] {
				select {
				case p.got <- transport.Packet{Addr: q.Addr, Buf: append([]byte(nil), q.Buf[:q.N]...), N: q.N}:
				default:
				}
			}
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *peer) close() {
	p.tr.Close()
	<-p.done
}

func (p *peer) send(t testing.TB, to netip.AddrPort, payload []byte) {
	t.Helper()
	if err := p.tr.WriteBatch([]transport.Packet{{Addr: to, Buf: payload, N: len(payload)}}); err != nil {
		t.Fatalf("WriteBatch to %v: %v", to, err)
	}
}

// expect waits for a datagram with the given payload and returns its source.
func (p *peer) expect(t testing.TB, payload string) netip.AddrPort {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case q := <-p.got:
			if string(q.Buf) == payload {
				return q.Addr
			}
		case <-deadline:
			t.Fatalf("%q not received within %v; this peer's stats %+v", payload, wait, p.stats())
		}
	}
}

// nothing checks that no datagram arrives for a while.
func (p *peer) nothing(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case q := <-p.got:
		t.Fatalf("unexpected datagram %q from %v", q.Buf, q.Addr)
	case <-time.After(d):
	}
}

// natBox forwards UDP between one client (which talks to front) and one
// server, from a back socket it can swap for another (a NAT rebinding the
// client's port). It records the size of every datagram it forwards.
type natBox struct {
	t      testing.TB
	front  *net.UDPConn
	server netip.AddrPort
	client atomic.Pointer[netip.AddrPort]
	back   atomic.Pointer[net.UDPConn]
	wg     sync.WaitGroup

	mu    sync.Mutex
	sizes []int  // client → server
	last  []byte // the latest datagram client → server
}

func newNATBox(t testing.TB, server netip.AddrPort) *natBox {
	front, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	n := &natBox{t: t, front: front, server: server}
	n.rebind()
	n.wg.Add(1)
	go n.forward()
	t.Cleanup(func() {
		n.front.Close()
		n.back.Load().Close()
		n.wg.Wait()
	})
	return n
}

func (n *natBox) addr() netip.AddrPort { return n.front.LocalAddr().(*net.UDPAddr).AddrPort() }

// rebind moves the server-facing side to a new port and returns it.
func (n *natBox) rebind() netip.AddrPort {
	back, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		n.t.Fatal(err)
	}
	if old := n.back.Swap(back); old != nil {
		old.Close()
	}
	n.wg.Add(1)
	go n.backward(back)
	return back.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (n *natBox) forward() {
	defer n.wg.Done()
	buf := make([]byte, 65536)
	for {
		k, from, err := n.front.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		n.client.Store(&from)
		n.mu.Lock()
		n.sizes = append(n.sizes, k)
		n.last = append(n.last[:0], buf[:k]...)
		n.mu.Unlock()
		_, _ = n.back.Load().WriteToUDPAddrPort(buf[:k], n.server)
	}
}

func (n *natBox) backward(back *net.UDPConn) {
	defer n.wg.Done()
	buf := make([]byte, 65536)
	for {
		k, _, err := back.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if c := n.client.Load(); c != nil {
			_, _ = n.front.WriteToUDPAddrPort(buf[:k], *c)
		}
	}
}

func (n *natBox) forwarded() []int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]int(nil), n.sizes...)
}

func (n *natBox) lastPayload() []byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]byte(nil), n.last...)
}
