package kcp

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

// kcp-go keeps process-wide workers for the life of the process: its
// update scheduler (SystemTimedSched) and, since v5.7, a pool of at most
// eight post-processing workers started by the first session.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/xtaci/kcp-go/v5.(*TimedSched).run"),
		goleak.IgnoreAnyFunction("github.com/xtaci/kcp-go/v5.(*TimedSched).sched"),
		goleak.IgnoreAnyFunction("github.com/xtaci/kcp-go/v5.(*TimedSched).prepend"),
		goleak.IgnoreAnyFunction("github.com/xtaci/kcp-go/v5.postProcessWorker"))
}

const wait = 5 * time.Second

// node is a listening transport whose reader hands datagrams to got.
type node struct {
	tr   transport.Transport
	addr netip.AddrPort
	got  chan transport.Packet
	done chan struct{}
}

func (n *node) stats() Stats { return n.tr.(*kcpTransport).Stats() }

func newNode(t testing.TB, addr string, opts map[string]string) *node {
	t.Helper()
	tr, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	bound, err := tr.Listen(netip.MustParseAddrPort(addr))
	if err != nil {
		tr.Close()
		t.Fatal(err)
	}
	n := &node{tr: tr, addr: bound, got: make(chan transport.Packet, 1<<16), done: make(chan struct{})}
	go func() {
		defer close(n.done)
		pkts := make([]transport.Packet, transport.BatchSize)
		for i := range pkts {
			pkts[i].Buf = make([]byte, 1500)
		}
		for {
			k, err := tr.ReadBatch(pkts)
			if err != nil {
				if !errors.Is(err, transport.ErrClosed) {
					t.Errorf("ReadBatch: %v", err)
				}
				return
			}
			for _, q := range pkts[:k] {
				select {
				case n.got <- transport.Packet{Addr: q.Addr, Buf: append([]byte(nil), q.Buf[:q.N]...), N: q.N}:
				default:
				}
			}
		}
	}()
	t.Cleanup(n.close)
	return n
}

func (n *node) close() {
	n.tr.Close()
	<-n.done
}

func (n *node) send(t testing.TB, to netip.AddrPort, payload []byte) {
	t.Helper()
	if err := n.tr.WriteBatch([]transport.Packet{{Addr: to, Buf: payload, N: len(payload)}}); err != nil {
		t.Fatalf("WriteBatch to %v: %v", to, err)
	}
}

func (n *node) expect(t testing.TB, payload string) netip.AddrPort {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case q := <-n.got:
			if string(q.Buf) == payload {
				return q.Addr
			}
		case <-deadline:
			t.Fatalf("%q not received within %v", payload, wait)
		}
	}
}

// tryExpect reports whether payload arrives within d.
func (n *node) tryExpect(payload string, d time.Duration) bool {
	timeout := time.After(d)
	for {
		select {
		case p := <-n.got:
			if string(p.Buf) == payload {
				return true
			}
		case <-timeout:
			return false
		}
	}
}
