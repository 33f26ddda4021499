package sim

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/core/identity"
	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/plugins/discovery/gossip"
	"github.com/tarzan-net/tarzan/plugins/discovery/static"
	"github.com/tarzan-net/tarzan/sdk/discovery"
	"github.com/tarzan-net/tarzan/sim/simnet"
)

const simPort = 7000

// member is one running node of the simulation.
type member struct {
	n      *node.Node
	disc   discovery.Discovery
	addr   netip.AddrPort
	sybil  bool
	joined time.Time
}

// cluster owns the network and the running nodes.
type cluster struct {
	cfg    Config
	net    *simnet.Network
	alloc  *simnet.Allocator
	honest []int // honest /16 handles
	sybil  []int
	tables *TableCache
	descs  *DescriptorCache
	log    *slog.Logger

	mu      sync.Mutex
	gated   []*gatedDiscovery // held until release
	opened  bool              // released: new nodes start gossiping at once
	rng     *rand.Rand
	members []*member // live
	gone    []*member // closed by churn
	seq     uint64    // identities made
}

func newCluster(cfg Config) (*cluster, error) {
	c := &cluster{
		cfg:   cfg,
		net:   simnet.New(cfg.Net),
		alloc: simnet.NewAllocator(cfg.Seed, cfg.PerMid, simPort),
		log:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		rng:   rand.New(rand.NewPCG(cfg.Seed, 0xc1)),
	}
	var err error
	if c.honest, err = c.alloc.NewDomains(cfg.Domains); err != nil {
		return nil, err
	}
	if cfg.SybilNodes > 0 {
		// Enough hosts per /24 to fit the adversary's nodes in its /16s.
		perDomain := (cfg.SybilNodes + cfg.SybilDomains - 1) / cfg.SybilDomains
		if c.sybil, err = c.alloc.NewDomainsPacked(cfg.SybilDomains, max(cfg.PerMid, (perDomain+255)/256)); err != nil {
			return nil, err
		}
	}
	if cfg.Share {
		total := cfg.Nodes + cfg.SybilNodes
		c.tables = NewTableCache(4)
		c.descs = NewDescriptorCache(4*total + 1024)
	}
	return c, nil
}

// lockedRand makes a seeded generator safe for a node's goroutines.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.ChaCha8
}

func (l *lockedRand) Read(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Read(p)
}

func (c *cluster) newRand() *lockedRand {
	c.mu.Lock()
	c.seq++
	var seed [32]byte
	copy(seed[:], strconv.FormatUint(c.cfg.Seed, 16)+"/"+strconv.FormatUint(c.seq, 16))
	c.mu.Unlock()
	return &lockedRand{r: rand.NewChaCha8(seed)}
}

// start creates and starts one node at addr; bootstrap is where its
// gossip joins (invalid: nowhere, it waits to be found).
func (c *cluster) start(addr netip.AddrPort, bootstrap []netip.AddrPort, sybil bool) (*member, error) {
	rnd := c.newRand()
	id, err := identity.Generate(rnd)
	if err != nil {
		return nil, err
	}
	disc, err := c.discovery(bootstrap)
	if err != nil {
		return nil, err
	}
	cfg := c.cfg
	opts := node.Options{
		Identity:             id,
		Transport:            c.net.NewTransport(),
		Listen:               addr,
		Discovery:            c.gate(disc),
		MimicCount:           cfg.K,
		EpochLength:          cfg.EpochLength,
		DescriptorLifetime:   cfg.DescriptorLifetime,
		MaintenanceInterval:  cfg.MaintenanceInterval,
		KeepaliveInterval:    cfg.KeepaliveInterval,
		LinkTimeout:          cfg.LinkTimeout,
		MimicRebuildInterval: cfg.MimicRebuildInterval,
		MimicSettleTime:      cfg.MimicSettleTime,
		Rand:                 rnd,
		Logger:               c.log,
	}
	if c.tables != nil {
		opts.MimicTable = c.tables.Table
		opts.ParseDescriptor = c.descs.Parse
	}
	n, err := node.New(opts)
	if err != nil {
		return nil, err
	}
	if err := n.Start(context.Background()); err != nil {
		return nil, fmt.Errorf("sim: starting node at %s: %w", addr, err)
	}
	m := &member{n: n, disc: disc, addr: addr, sybil: sybil, joined: time.Now()}
	c.mu.Lock()
	c.members = append(c.members, m)
	c.mu.Unlock()
	return m, nil
}

func (c *cluster) discovery(bootstrap []netip.AddrPort) (discovery.Discovery, error) {
	var list []string
	for _, a := range bootstrap {
		list = append(list, a.String())
	}
	if c.cfg.Discovery == "static" {
		return static.New(map[string]string{"peers": strings.Join(list, ","), "interval": "5s"})
	}
	o := map[string]string{"bootstrap": strings.Join(list, ","), "interval": c.cfg.GossipInterval.String()}
	if c.cfg.GossipFanout > 0 {
		o["fanout"] = strconv.Itoa(c.cfg.GossipFanout)
	}
	if c.cfg.GossipMaxBytes > 0 {
		o["max_bytes"] = strconv.Itoa(c.cfg.GossipMaxBytes)
	}
	if c.descs != nil {
		return gossip.NewWithParser(o, c.descs.Parse)
	}
	return gossip.New(o)
}

// live returns the running nodes.
func (c *cluster) live() []*member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*member(nil), c.members...)
}

// stop closes a node and forgets it.
func (c *cluster) stop(m *member) {
	m.n.Close()
	m.n.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.members {
		if x == m {
			c.members = append(c.members[:i], c.members[i+1:]...)
			break
		}
	}
	c.gone = append(c.gone, m)
}

// close stops every node, in parallel (closing 10,000 nodes one by one
// waits on each one's goroutines in turn).
func (c *cluster) close() {
	var wg sync.WaitGroup
	c.net.Shutdown()
	for _, m := range c.live() {
		m.n.Close()
	}
	for _, m := range c.live() {
		wg.Add(1)
		go func() { defer wg.Done(); m.n.Wait() }()
	}
	wg.Wait()
}

// gossipStat sums a counter of the gossip plugins of live nodes.
func gossipStats(ms []*member) (sum map[string]uint64, ok bool) {
	sum = map[string]uint64{}
	for _, m := range ms {
		s, has := m.disc.(interface{ Stats() map[string]uint64 })
		if !has {
			return nil, false
		}
		for k, v := range s.Stats() {
			sum[k] += v
		}
	}
	return sum, true
}

// Gossip is held until every node has started: started nodes would
// otherwise gossip, probe and admit while the rest are still being
// created, and at thousands of nodes that work starves the goroutine
// creating them (3,500 of 10,000 nodes started in 4 minutes, then no
// more). A real network grows node by node, but a simulation wants to
// measure convergence from one common start.

// gatedDiscovery defers its backend's Start until the cluster releases
// it. It forwards the messaging methods the core looks for.
type gatedDiscovery struct {
	discovery.Discovery
	mu      sync.Mutex
	self    []byte
	started bool
}

func (g *gatedDiscovery) Start(self []byte) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started {
		return g.Discovery.Start(self)
	}
	g.self = append([]byte(nil), self...)
	return nil
}

func (g *gatedDiscovery) release() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.started {
		return nil
	}
	g.started = true
	if g.self == nil {
		return nil
	}
	return g.Discovery.Start(g.self)
}

func (g *gatedDiscovery) Deliver(msgs []discovery.Message) error {
	return g.Discovery.(discovery.Messenger).Deliver(msgs)
}

func (g *gatedDiscovery) Outbox(ctx context.Context) ([]discovery.Message, error) {
	return g.Discovery.(discovery.Messenger).Outbox(ctx)
}

// gate wraps a messaging backend while the cluster is not released.
func (c *cluster) gate(d discovery.Discovery) discovery.Discovery {
	if _, ok := d.(discovery.Messenger); !ok {
		return d
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.opened {
		return d
	}
	g := &gatedDiscovery{Discovery: d}
	c.gated = append(c.gated, g)
	return g
}

// release starts every held backend.
func (c *cluster) release() error {
	c.mu.Lock()
	gs := c.gated
	c.gated, c.opened = nil, true
	c.mu.Unlock()
	for _, g := range gs {
		if err := g.release(); err != nil {
			return err
		}
	}
	return nil
}
