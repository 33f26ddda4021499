package sim

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/sim/simnet"
)

// Config describes one simulation.
type Config struct {
	Nodes int    // honest nodes
	Seed  uint64 // identities, addresses and the network's random choices

	K       int // mimics chosen per node (default 6)
	Hops    int // tunnel length (default 3)
	Tunnels int // tunnels to build after convergence (default 100)

	// Domains is how many /16s the honest nodes are spread over (default
	// Nodes/2, at least 1) and PerMid how many share a /24 (default 1).
	Domains int
	PerMid  int

	// Sybil adversary: SybilNodes nodes in SybilDomains /16s of their own.
	SybilNodes   int
	SybilDomains int
	// SelectionSamples is how many paths the selection-only comparison
	// draws (default 20,000).
	SelectionSamples int
	// SelectionOnly skips running nodes: it draws the Sybil shares on the
	// full-membership mimic table of the same identities and addresses
	// (for networks too large to run here).
	SelectionOnly bool
	// Grind, in a selection-only run with Sybils, adds the grinding
	// analysis (grind.go): each adversary node tries up to Grind
	// identities. GrindPool (> SybilDomains, one node per /16) also lets
	// the adversary pick which of GrindPool /16s to show.
	Grind     int
	GrindPool int
	// GrindInsiders also puts one adversary node (never ground) in each
	// of that many honest /16s, for ground nodes to choose there.
	GrindInsiders int
	// GrindSearch bounds the adversary's search for its best /16s, per
	// path rule (default 20 s).
	GrindSearch time.Duration

	// Churn is the fraction (0..1) of nodes replaced per epoch, for
	// ChurnEpochs epochs of EpochLength after the first convergence.
	Churn       float64
	ChurnEpochs int

	// Discovery is "gossip" (default: one bootstrap address) or "static"
	// (every node gets every address: membership without gossip).
	Discovery      string
	GossipInterval time.Duration // default 1s
	GossipFanout   int           // default the plugin's
	// GossipMaxBytes is the plugin's per-round byte budget. Default
	// 256 KiB: with one bootstrap address every newcomer's first digests
	// all go to the bootstrap node, and at the plugin's 16 KiB it answers
	// about three a round (measured: 100 nodes at 20 ms latency stay at a
	// 2% mean view for 130 s; with 256 KiB they converge in about 12 s).
	GossipMaxBytes int

	// Node timing, shortened for simulation.
	EpochLength          time.Duration // default 24h, or 30s with churn
	DescriptorLifetime   time.Duration // default 3h, or 4 epochs with churn
	MaintenanceInterval  time.Duration // default 500ms, 1s from 2,000 nodes
	KeepaliveInterval    time.Duration // default 5s
	LinkTimeout          time.Duration // default 30s
	MimicRebuildInterval time.Duration // default 1s + 100µs × nodes², at most 5 min
	MimicSettleTime      time.Duration // default 2 maintenance intervals, 10 gossip intervals from 500 nodes

	// Share enables the shared mimic-table and descriptor caches.
	Share bool

	Net simnet.Config // Seed is taken from Seed

	Timeout  time.Duration // whole run (default 10 min)
	Progress io.Writer     // progress lines (nil: none)

	// BeforeStop, if set, runs once all phases are over (or the run
	// timed out) while every node is still up: where a heap profile
	// shows the peak.
	BeforeStop func()
}

// DefaultConfig is a 100-node network over a WAN-like simnet.
func DefaultConfig() Config {
	return Config{
		Nodes: 100, K: node.DefaultMimicCount, Hops: node.DefaultTunnelHops, Tunnels: 100, Share: true,
		Net: simnet.Config{Latency: 20 * time.Millisecond, Jitter: 5 * time.Millisecond, Bandwidth: 10 << 20},
	}
}

func (c *Config) setDefaults() {
	if c.K == 0 {
		c.K = node.DefaultMimicCount
	}
	if c.Hops == 0 {
		c.Hops = node.DefaultTunnelHops
	}
	if c.Domains == 0 {
		c.Domains = max(1, c.Nodes/2)
	}
	if c.PerMid == 0 {
		c.PerMid = 1
	}
	if c.SybilNodes > 0 && c.SybilDomains == 0 {
		c.SybilDomains = 1
	}
	if c.SelectionSamples == 0 {
		c.SelectionSamples = 20_000
	}
	if c.GrindSearch == 0 {
		c.GrindSearch = 20 * time.Second
	}
	if c.Discovery == "" {
		c.Discovery = "gossip"
	}
	if c.GossipMaxBytes == 0 {
		c.GossipMaxBytes = 256 << 10
	}
	if c.GossipInterval == 0 {
		c.GossipInterval = time.Second
	}
	if c.Churn > 0 && c.ChurnEpochs == 0 {
		c.ChurnEpochs = 3
	}
	if c.EpochLength == 0 {
		c.EpochLength = 24 * time.Hour
		if c.Churn > 0 {
			c.EpochLength = 30 * time.Second
		}
	}
	if c.DescriptorLifetime == 0 {
		c.DescriptorLifetime = 3 * time.Hour
		if c.Churn > 0 {
			// Capped at the protocol's bound (PROTOCOL.md §2): a longer
			// epoch gets the longest lifetime a node may sign.
			c.DescriptorLifetime = min(4*c.EpochLength, descriptor.MaxLifetime)
		}
	}
	total := c.Nodes + c.SybilNodes
	if c.MaintenanceInterval == 0 {
		c.MaintenanceInterval = 500 * time.Millisecond
		if total >= 2000 {
			c.MaintenanceInterval = time.Second
		}
	}
	if c.KeepaliveInterval == 0 {
		c.KeepaliveInterval = 5 * time.Second
	}
	if c.LinkTimeout == 0 {
		c.LinkTimeout = 30 * time.Second
	}
	if c.MimicRebuildInterval == 0 {
		// A table costs about 25 µs per member, and while views grow
		// they differ between nodes, so neither tables nor the links made
		// from them last: every rebuild is wasted until the view
		// settles, when the node rebuilds at once anyway. Keep the whole
		// network's rebuilds during growth well under one core's worth
		// (measured at 1,000 nodes with 25 µs × nodes²: rebuilds were a
		// fifth of the CPU and the links they made most of the rest of
		// the handshakes).
		c.MimicRebuildInterval = min(5*time.Minute, time.Second+time.Duration(total*total)*100*time.Microsecond)
	}
	if c.MimicSettleTime == 0 && total >= 500 {
		// At hundreds of nodes a node admits peers in bursts a few
		// gossip rounds apart while its view grows; two maintenance
		// intervals of quiet between bursts were taken for a settled
		// view, and table rebuilds were a third of the CPU at 1,000
		// nodes.
		c.MimicSettleTime = 10 * c.GossipInterval
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Minute
	}
	c.Net.Seed = c.Seed
}

func (c *Config) validate() error {
	switch {
	case c.Nodes < 2:
		return errors.New("sim: at least 2 nodes")
	case c.Domains > c.Nodes:
		return fmt.Errorf("sim: %d domains for %d nodes", c.Domains, c.Nodes)
	case c.SybilNodes < 0 || c.SybilDomains < 0 || (c.SybilNodes > 0 && c.SybilDomains > c.SybilNodes):
		return fmt.Errorf("sim: %d sybil nodes in %d domains", c.SybilNodes, c.SybilDomains)
	case c.Churn < 0 || c.Churn > 1:
		return fmt.Errorf("sim: churn %.2f out of range 0..1", c.Churn)
	case c.Discovery != "gossip" && c.Discovery != "static":
		return fmt.Errorf("sim: discovery %q: want gossip or static", c.Discovery)
	case c.Hops < 1 || c.Hops > 4:
		return fmt.Errorf("sim: %d hops out of range 1..4", c.Hops)
	}
	return nil
}
