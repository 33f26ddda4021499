package tun

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/plugins/adapter/pnat"
	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
)

// TestOffloads runs TCP both ways between a kernel socket in a namespace
// and a server on the host's loopback, through the TUN device and a pnat
// exit pumped into it (a tunnel with no hops), and checks that the
// device moves more than one packet per system call each way: the
// kernel hands over TSO super-packets that the adapter splits into
// segments that fit a cell, and takes segments written in one batch
// coalesced (GRO). Every packet the adapter hands on must fit the MTU.
func TestOffloads(t *testing.T) {
	requireRoot(t)
	ns := newOffloadNetns(t)
	const mtu = adapter.InnerMTU
	a := openInNetns(t, ns, "tzs0", t.TempDir(), adapter.Config{MTU: mtu})

	srv := startCountServer(t)
	alias := netip.MustParseAddr("198.18.0.1")
	pol, err := exitpolicy.Parse([]string{fmt.Sprintf("accept %s/32:%d", alias, srv.Port()), "reject *:*"})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := pnat.New(map[string]string{"alias": alias.String() + "=127.0.0.1", "allow_loopback": "true"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ex.Open(adapter.Config{MTU: mtu, ExitPolicy: pol}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var tooBig errorOnce
	wg.Add(2)
	var batches, batchPkts atomic.Uint64 // what ReadPackets returned
	go func() {
		defer wg.Done()
		pumpPackets(a, ex, mtu, &tooBig, func(n int) { batches.Add(1); batchPkts.Add(uint64(n)) })
	}()
	go func() { defer wg.Done(); pumpPackets(ex, a, 0, nil, nil) }()
	defer func() { a.Close(); ex.Close(); wg.Wait() }()

	const size = 8 << 20
	dst := netip.AddrPortFrom(alias, srv.Port())
	for _, dir := range []string{"upload", "download"} {
		before := linkStats(t, ns, "tzs0")
		r0, rp0, tu0 := a.stats.reads.Load(), a.stats.readPkts.Load(), a.stats.topUps.Load()
		b0, bp0 := batches.Load(), batchPkts.Load()
		w0, wp0 := a.stats.writes.Load(), a.stats.writePkts.Load()
		var c net.Conn
		inNetns(t, ns, func() {
			var err error
			if c, err = net.DialTimeout("tcp", dst.String(), 10*time.Second); err != nil {
				t.Fatalf("dial %s through the TUN: %v", dst, err)
			}
		})
		c.SetDeadline(time.Now().Add(60 * time.Second))
		if err := transfer(c, dir, size); err != nil {
			c.Close()
			t.Fatalf("%s: %v", dir, err)
		}
		c.Close()
		after := linkStats(t, ns, "tzs0")
		// The kernel counts a super-packet as one: its TX (towards
		// us) counts our reads, its RX our write(2)s.
		reads, readPkts := a.stats.reads.Load()-r0, a.stats.readPkts.Load()-rp0
		writes, writePkts := a.stats.writes.Load()-w0, a.stats.writePkts.Load()-wp0
		kTX, kRX := after.tx-before.tx, after.rx-before.rx
		nb, nbp := batches.Load()-b0, batchPkts.Load()-bp0
		t.Logf("%s %d MiB: read %d packets in %d reads (kernel sent %d; %d reads added to a batch; %d batches of %.1f), wrote %d packets in %d batches (kernel took %d writes)",
			dir, size>>20, readPkts, reads, kTX, a.stats.topUps.Load()-tu0, nb, float64(nbp)/float64(max(nb, 1)), writePkts, writes, kRX)
		switch dir {
		case "upload": // the kernel sends data: TSO
			if kTX == 0 || readPkts < 2*kTX {
				t.Errorf("upload: %d packets from %d kernel packets: no segmentation offload", readPkts, kTX)
			}
		case "download": // the kernel receives data: GRO
			if kRX == 0 || writePkts < 2*kRX {
				t.Errorf("download: %d packets in %d kernel writes: nothing coalesced", writePkts, kRX)
			}
		}
	}
	if err := tooBig.get(); err != nil {
		t.Error(err)
	}
}

// newOffloadNetns is newNetns with this package's "tzs-" prefix.
func newOffloadNetns(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("tzs-%d-%d", os.Getpid(), nsCounter.Add(1))
	ipCmd(t, "netns", "add", name)
	t.Cleanup(func() { ipTry("netns", "del", name) })
	ipCmd(t, "-n", name, "link", "set", "lo", "up")
	return name
}

type errorOnce struct {
	mu  sync.Mutex
	err error
}

func (e *errorOnce) set(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err == nil {
		e.err = err
	}
}

func (e *errorOnce) get() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.err
}

// pumpPackets moves batches from one adapter to the other; with limit
// > 0 it reports (once) a packet longer than limit.
func pumpPackets(from, to adapter.Adapter, limit int, tooBig *errorOnce, batch func(n int)) {
	pkts := make([]adapter.Packet, adapter.BatchSize)
	for i := range pkts {
		pkts[i].Buf = make([]byte, 2048)
	}
	for {
		n, err := from.ReadPackets(pkts)
		if err != nil {
			return
		}
		if batch != nil {
			batch(n)
		}
		for _, p := range pkts[:n] {
			if limit > 0 && p.N > limit {
				tooBig.set(fmt.Errorf("a %d-byte packet left the TUN adapter (MTU %d)", p.N, limit))
			}
		}
		if _, err := to.WritePackets(pkts[:n]); errors.Is(err, adapter.ErrClosed) {
			return
		}
	}
}

// startCountServer serves on the host's loopback: "u N" reads N bytes
// then answers "ok"; "d N" writes N bytes.
func startCountServer(t *testing.T) netip.AddrPort {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(60 * time.Second))
				var dir string
				var n int64
				if _, err := fmt.Fscanf(c, "%s %d\n", &dir, &n); err != nil {
					return
				}
				if dir == "u" {
					if k, _ := io.CopyN(io.Discard, c, n); k == n {
						c.Write([]byte("ok"))
					}
					return
				}
				io.CopyN(c, zeros{}, n)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).AddrPort()
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// transfer moves size bytes in direction dir over c, the client side.
func transfer(c net.Conn, dir string, size int64) error {
	if dir == "upload" {
		fmt.Fprintf(c, "u %d\n", size)
		if _, err := io.CopyN(c, zeros{}, size); err != nil {
			return err
		}
		var ok [2]byte
		if _, err := io.ReadFull(c, ok[:]); err != nil || string(ok[:]) != "ok" {
			return fmt.Errorf("no acknowledgement from the server: %v", err)
		}
		return nil
	}
	fmt.Fprintf(c, "d %d\n", size)
	n, err := io.Copy(io.Discard, c)
	if n != size {
		return fmt.Errorf("got %d of %d bytes: %v", n, size, err)
	}
	return nil
}

type ifStats struct{ rx, tx uint64 }

// linkStats reads a device's packet counters with `ip -s link`.
func linkStats(t *testing.T, ns, dev string) ifStats {
	t.Helper()
	out := ipCmd(t, "-n", ns, "-s", "link", "show", dev)
	lines := strings.Split(out, "\n")
	var st ifStats
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 || i+1 >= len(lines) {
			continue
		}
		v := strings.Fields(lines[i+1])
		if len(v) < 2 {
			continue
		}
		n, _ := strconv.ParseUint(v[1], 10, 64)
		switch f[0] {
		case "RX:":
			st.rx = n
		case "TX:":
			st.tx = n
		}
	}
	return st
}
