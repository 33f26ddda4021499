package redteam

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/netip"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/link"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

func init() {
	register(Attack{
		Name:     "probe-reflection",
		Finding:  "a probe whose descriptor advertises a third party's address makes the node send to that address",
		Severity: "medium",
		Run:      runProbeReflection,
	})
	register(Attack{
		Name:     "handshake-flood",
		Finding:  "a handshake flood from a mimic's IP on another port costs the victim public-key work and slows its tunnels",
		Severity: "medium",
		Run:      runHandshakeFlood,
	})
	register(Attack{
		Name:     "probe-flood",
		Finding:  "a probe flood makes the victim verify and sign for every probe and slows its tunnels",
		Severity: "medium",
		Run:      runProbeFlood,
	})
}

// attackerDescriptor signs a fresh identity's descriptor listing addrs on
// the in-memory transport, valid from now for lifetime.
func attackerDescriptor(addrs []netip.AddrPort, lifetime time.Duration) (*identity.Identity, []byte, error) {
	id, err := identity.Generate(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	d := &descriptor.Descriptor{Published: time.Now(), Expires: time.Now().Add(lifetime)}
	if _, err := rand.Read(d.LinkKey[:]); err != nil {
		return nil, nil, err
	}
	if _, err := rand.Read(d.OnionKey[:]); err != nil {
		return nil, nil, err
	}
	for _, a := range addrs {
		d.Addrs = append(d.Addrs, descriptor.Addr{Transport: "mem", AddrPort: a})
	}
	b, err := d.Sign(id)
	return id, b, err
}

// countFrames reads tr until ctx ends and returns the datagrams and bytes
// it received.
func countFrames(ctx context.Context, tr transport.Transport) (int, int) {
	pkts := make([]transport.Packet, transport.BatchSize)
	for i := range pkts {
		pkts[i].Buf = make([]byte, 2048)
	}
	frames, bytes := 0, 0
	done := make(chan struct{})
	go func() {
		<-ctx.Done()
		tr.Close()
		close(done)
	}()
	for {
		n, err := tr.ReadBatch(pkts)
		if err != nil {
			<-done
			return frames, bytes
		}
		for _, p := range pkts[:n] {
			frames++
			bytes += p.N
		}
	}
}

// runProbeReflection: the attacker sends probes from its own address,
// each carrying a fresh descriptor that advertises only a third party's
// address. A node that probes what a descriptor claims instead of where
// the probe came from reflects traffic (and a signature's work) at the
// third party. Metric: datagrams the third party receives per probe sent.
func runProbeReflection(ctx context.Context, size Size) (Result, error) {
	probes := 50
	if size == Full {
		probes = 500
	}
	nt, err := StartNet(ctx, NetConfig{Nodes: 4, K: 3})
	if err != nil {
		return Result{}, err
	}
	defer nt.Close()
	victim := nt.Nodes[0]
	attackerAddr := netip.MustParseAddrPort("127.200.0.1:7700")
	thirdAddr := netip.MustParseAddrPort("127.201.0.1:7700")
	atk, err := nt.Raw(attackerAddr)
	if err != nil {
		return Result{}, err
	}
	third, err := nt.Raw(thirdAddr)
	if err != nil {
		return Result{}, err
	}
	cctx, stop := context.WithCancel(ctx)
	counted := make(chan [2]int, 1)
	go func() {
		f, b := countFrames(cctx, third)
		counted <- [2]int{f, b}
	}()
	for i := 0; i < probes; i++ {
		_, desc, err := attackerDescriptor([]netip.AddrPort{thirdAddr}, time.Hour)
		if err != nil {
			stop()
			return Result{}, err
		}
		var nonce [32]byte
		rand.Read(nonce[:])
		frame, err := link.EncodeProbe(nonce, desc)
		if err != nil {
			stop()
			return Result{}, err
		}
		if err := atk.WriteBatch([]transport.Packet{{Addr: victim.Addr(), Buf: frame, N: len(frame)}}); err != nil {
			stop()
			return Result{}, err
		}
	}
	// The victim probes from its maintenance loop (every 20 ms here); two
	// seconds is a hundred rounds.
	time.Sleep(2 * time.Second)
	stop()
	c := <-counted
	return Result{
		Metric:   "datagrams reflected at the third party per probe",
		Attacker: float64(c[0]) / float64(probes),
		Passive:  0,
		Detail:   fmt.Sprintf("%d probes with third-party descriptors; the third party received %d datagrams (%d bytes)", probes, c[0], c[1]),
	}, nil
}

// runHandshakeFlood: initiations from a mimic's IP on another port, each a
// genuine Noise IK message to the victim's link key from an unknown
// identity, replayed from a pool. Before the victim can tell, it does the
// key agreement unless it refuses by source rate first.
func runHandshakeFlood(ctx context.Context, size Size) (Result, error) {
	nt, vd, err := startFloodNet(ctx)
	if err != nil {
		return Result{}, err
	}
	defer nt.Close()
	const victim = 0
	v := nt.Nodes[victim]
	mimic := v.Mimics()[0].Addr
	src := netip.AddrPortFrom(mimic.Addr(), mimic.Port()+1)
	tr, err := nt.Raw(src)
	if err != nil {
		return Result{}, err
	}
	pool := make([][]byte, 256)
	for i := range pool {
		st, err := link.NewStatic(rand.Reader)
		if err != nil {
			return Result{}, err
		}
		var id identity.ID
		rand.Read(id[:])
		_, frame, err := link.Initiate(st, id, vd.LinkKey, uint32(i+1), rand.Reader, time.Now())
		if err != nil {
			return Result{}, err
		}
		pool[i] = frame
	}
	return floodResult(ctx, nt, victim, planFor(size), rawSender(tr, v.Addr()), func(i int) []byte { return pool[i%len(pool)] },
		[]string{"drop_handshake_ratelimit", "drop_handshake_nonmimic", "drop_handshake_invalid"})
}

// runProbeFlood: probes from one outside address, each with a fresh
// validly signed descriptor listing that address (so nothing but rate can
// refuse them), replayed from a pool.
func runProbeFlood(ctx context.Context, size Size) (Result, error) {
	nt, err := StartNet(ctx, NetConfig{Nodes: 6, K: 3})
	if err != nil {
		return Result{}, err
	}
	defer nt.Close()
	const victim = 0
	v := nt.Nodes[victim]
	src := netip.MustParseAddrPort("127.202.0.1:7700")
	tr, err := nt.Raw(src)
	if err != nil {
		return Result{}, err
	}
	go countFrames(ctx, tr) // drain the proofs, as a real flooder's socket would
	pool := make([][]byte, 256)
	for i := range pool {
		_, desc, err := attackerDescriptor([]netip.AddrPort{src}, time.Hour)
		if err != nil {
			return Result{}, err
		}
		var nonce [32]byte
		rand.Read(nonce[:])
		if pool[i], err = link.EncodeProbe(nonce, desc); err != nil {
			return Result{}, err
		}
	}
	return floodResult(ctx, nt, victim, planFor(size), rawSender(tr, v.Addr()), func(i int) []byte { return pool[i%len(pool)] },
		[]string{"drop_probe_ratelimit", "drop_descriptor_invalid", "drop_proof_invalid"})
}
