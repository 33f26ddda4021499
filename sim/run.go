package sim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/node"
)

// Run starts the network, waits for full membership and mimic links,
// builds tunnels, runs the Sybil analysis and churn if asked, and stops
// every node. A run that hits cfg.Timeout returns the partial report and
// an error saying which phase did not finish.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	// The cause names the flag, so that a run cut short says why rather
	// than "context deadline exceeded"; it still matches DeadlineExceeded.
	ctx, cancel := context.WithTimeoutCause(ctx, cfg.Timeout,
		fmt.Errorf("the run's --timeout of %v ran out (%w)", cfg.Timeout, context.DeadlineExceeded))
	defer cancel()
	began := time.Now()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseline := ms.HeapAlloc

	c, err := newCluster(cfg)
	if err != nil {
		return nil, err
	}
	r := &Report{
		Nodes: cfg.Nodes, SybilNodes: cfg.SybilNodes, SybilDomains: cfg.SybilDomains, Domains: cfg.Domains,
		PerMid: cfg.PerMid, K: cfg.K, Hops: cfg.Hops, Discovery: cfg.Discovery, Seed: cfg.Seed, Shared: cfg.Share,
	}
	if cfg.SelectionOnly {
		r.SelectionOnly = true
		err := runSelectionOnly(cfg, r)
		r.WallSeconds = time.Since(began).Seconds()
		return r, err
	}
	mon := &monitor{cfg: cfg, c: c, r: r, baseline: baseline}
	defer func() {
		if cfg.BeforeStop != nil {
			cfg.BeforeStop()
		}
		mon.beforeClose()
		// Stop the nodes first: at thousands of nodes they would
		// otherwise keep both cores busy while the totals are read.
		c.close()
		r.WallSeconds = time.Since(began).Seconds()
		mon.finish()
	}()

	if err := c.startAll(ctx, mon); err != nil {
		return r, err
	}
	if err := c.release(); err != nil {
		return r, err
	}
	r.StartSeconds = time.Since(began).Seconds()
	mon.started = time.Now()

	if err := mon.waitMembership(ctx); err != nil {
		return r, err
	}
	// Tables are rebuilt once a view has settled (two maintenance
	// intervals): let every node catch up before judging its links.
	time.Sleep(3 * cfg.MaintenanceInterval)
	if err := mon.waitLinks(ctx); err != nil {
		r.Notes = append(r.Notes, err.Error())
	}
	r.MimicAgreement = mimicAgreement(c.live())
	// Steady state: handshakes from here on are rekeys and repairs
	// between nodes whose views and tables agree.
	var steady hsCounts
	steady.est, steady.ref = handshakeCounts(c.live())

	honest := honestOf(c.live())
	r.Tunnels = c.buildTunnels(ctx, honest, cfg.Tunnels, nil)
	if cfg.SybilNodes > 0 {
		r.Sybil = c.sybilAnalysis(ctx, cfg)
	}
	est, ref := handshakeCounts(c.live())
	r.Handshakes = shareOf(est, ref)
	r.HandshakesAfter = shareOf(est-steady.est, ref-steady.ref)
	mon.gossipRates()

	if cfg.Churn > 0 {
		if err := c.churn(ctx, mon); err != nil {
			return r, err
		}
	}
	return r, nil
}

type hsCounts struct{ est, ref uint64 }

func handshakeCounts(ms []*member) (est, ref uint64) {
	for _, m := range ms {
		est += m.n.Stat(node.EventLinksUp)
		ref += m.n.Stat(node.DropHandshakeNonMimic)
	}
	return est, ref
}

func honestOf(ms []*member) []*member {
	var out []*member
	for _, m := range ms {
		if !m.sybil {
			out = append(out, m)
		}
	}
	return out
}

// startAll starts the honest nodes, then the Sybils; each bootstraps
// from the first node (gossip) or gets every address (static).
func (c *cluster) startAll(ctx context.Context, mon *monitor) error {
	cfg := c.cfg
	addrs, err := c.alloc.Spread(cfg.Nodes, c.honest)
	if err != nil {
		return err
	}
	var sybil []netip.AddrPort
	if cfg.SybilNodes > 0 {
		if sybil, err = c.alloc.Spread(cfg.SybilNodes, c.sybil); err != nil {
			return err
		}
	}
	all := append(slices.Clone(addrs), sybil...)
	for i, a := range all {
		if ctx.Err() != nil {
			return fmt.Errorf("sim: starting nodes: %w after %d of %d", context.Cause(ctx), i, len(all))
		}
		var boot []netip.AddrPort
		switch {
		case cfg.Discovery == "static":
			boot = all
		case i > 0:
			boot = all[:1]
		}
		if _, err := c.start(a, boot, i >= len(addrs)); err != nil {
			return err
		}
		if i%500 == 499 {
			mon.progress("starting nodes: %d/%d", i+1, len(all))
			if err := heapNearLimit(); err != nil {
				return fmt.Errorf("sim: stopped starting nodes after %d of %d: %w", i+1, len(all), err)
			}
		}
	}
	return nil
}

// buildTunnels builds count tunnels from random nodes of from, eight at a
// time, and closes them; onPath sees each built path.
func (c *cluster) buildTunnels(ctx context.Context, from []*member, count int, onPath func([]node.HopInfo)) TunnelStats {
	if len(from) == 0 || count == 0 {
		return TunnelStats{}
	}
	var mu sync.Mutex
	var setups []time.Duration
	errs := map[string]int{}
	jobs := make(chan *member)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range jobs {
				tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				t, err := m.n.BuildTunnel(tctx, c.cfg.Hops)
				cancel()
				mu.Lock()
				if err != nil {
					errs[errClass(err)]++
				} else {
					setups = append(setups, t.SetupTime())
					if onPath != nil {
						onPath(t.Hops())
					}
				}
				mu.Unlock()
				if t != nil {
					t.Close()
				}
			}
		}()
	}
	c.mu.Lock()
	picks := make([]*member, count)
	for i := range picks {
		picks[i] = from[c.rng.IntN(len(from))]
	}
	c.mu.Unlock()
	for _, m := range picks {
		jobs <- m
	}
	close(jobs)
	wg.Wait()
	return tunnelStats(setups, count, errs)
}

// errClass shortens an error to its kind for the report.
func errClass(err error) string {
	switch {
	case errors.Is(err, node.ErrNoPath):
		return "no_path"
	case errors.Is(err, node.ErrExtendFailed):
		return "extend_refused"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	s := err.Error()
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

// churn replaces cfg.Churn of the nodes at the start of each epoch and
// measures membership and tunnels at its end.
func (c *cluster) churn(ctx context.Context, mon *monitor) error {
	cfg := c.cfg
	for e := 1; e <= cfg.ChurnEpochs; e++ {
		live := c.live()
		k := int(cfg.Churn*float64(len(live)) + 0.5)
		c.mu.Lock()
		perm := c.rng.Perm(len(live))
		c.mu.Unlock()
		ep := ChurnEpoch{Epoch: e}
		for _, i := range perm[:k] {
			if live[i].sybil {
				continue
			}
			c.stop(live[i])
			ep.Left++
		}
		for range ep.Left {
			rest := c.live()
			c.mu.Lock()
			boot := rest[c.rng.IntN(len(rest))].addr
			top := c.honest[c.rng.IntN(len(c.honest))]
			c.mu.Unlock()
			addr, err := c.alloc.Addr(top)
			if err != nil {
				return err
			}
			var bs []netip.AddrPort
			if cfg.Discovery == "static" {
				for _, m := range rest {
					bs = append(bs, m.addr)
				}
			} else {
				bs = []netip.AddrPort{boot}
			}
			if _, err := c.start(addr, bs, false); err != nil {
				return err
			}
			ep.Joined++
		}
		mon.progress("churn epoch %d: -%d +%d", e, ep.Left, ep.Joined)
		end := time.Now().Add(cfg.EpochLength)
		for time.Now().Before(end) {
			if ctx.Err() != nil {
				return fmt.Errorf("sim: churn epoch %d: %w", e, context.Cause(ctx))
			}
			mon.sample()
			mon.progress("churn epoch %d/%d", e, cfg.ChurnEpochs)
			time.Sleep(mon.tick())
		}
		ep.KnownShare, ep.StaleShare = c.liveKnowledge(50)
		ep.Tunnels = c.buildTunnels(ctx, honestOf(c.live()), min(max(cfg.Tunnels/cfg.ChurnEpochs, 20), 200), nil)
		mon.r.Churn = append(mon.r.Churn, ep)
	}
	return nil
}

// liveKnowledge samples nodes: the share of live peers each knows and the
// share of its view that are nodes gone.
func (c *cluster) liveKnowledge(samples int) (known, stale float64) {
	live := c.live()
	isLive := make(map[identity.ID]bool, len(live))
	for _, m := range live {
		isLive[m.n.ID()] = true
	}
	rng := rand.New(rand.NewPCG(c.cfg.Seed, 0x5a))
	n := 0
	for range samples {
		m := live[rng.IntN(len(live))]
		all := m.n.View().All()
		have := 0
		for _, p := range all {
			if isLive[p.ID] {
				have++
			}
		}
		known += float64(have) / float64(len(live)-1)
		if len(all) > 0 {
			stale += float64(len(all)-have) / float64(len(all))
		}
		n++
	}
	return known / float64(n), stale / float64(n)
}

// mimicAgreement is the share of mimic pairs (A, B), B among A's mimics,
// where B's own table also makes A its mimic: the check B runs when A
// proposes the link.
func mimicAgreement(ms []*member) float64 {
	sets := make(map[identity.ID]map[identity.ID]bool, len(ms))
	for _, m := range ms {
		set := map[identity.ID]bool{}
		for _, x := range m.n.Mimics() {
			set[x.ID] = true
		}
		sets[m.n.ID()] = set
	}
	agree, total := 0, 0
	for a, set := range sets {
		for b := range set {
			total++
			if sets[b][a] {
				agree++
			}
		}
	}
	if total == 0 {
		return 0
	}
	return float64(agree) / float64(total)
}

// heapNearLimit reports when the heap reached 90% of the memory limit
// (tarzan sim --mem-limit): the run must stop before the machine runs
// out of memory.
func heapNearLimit() error {
	limit := debug.SetMemoryLimit(-1)
	if limit == math.MaxInt64 {
		return nil
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapAlloc > uint64(limit)/10*9 {
		return fmt.Errorf("the heap (%s) reached 90%% of the memory limit (%s)", bytesStr(float64(ms.HeapAlloc)), bytesStr(float64(limit)))
	}
	return nil
}
