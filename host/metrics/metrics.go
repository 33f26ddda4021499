// Package metrics serves a node's Prometheus metrics. It keeps no state of
// its own: a collector reads what the node already counts (core/node's
// counters, LinkStats and TunnelBuilds, the IP service's tunnels, the
// plugins' statistics) when Prometheus scrapes, so metrics cost the data
// path nothing.
//
// Labels never carry an address or a full node ID. A link is labelled by
// its peer's short ID (8 hex digits, as the logs name peers). A tunnel is
// labelled by its slot only: a small number, the lowest free among the
// open tunnels, reused after one closes (bounded cardinality), never its
// hops, which would record which relays this node's traffic crossed
// (docs/DECISIONS.md D45 and D53).
package metrics

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tarzan-net/tarzan/core/ipservice"
	"github.com/tarzan-net/tarzan/core/node"
)

// Plugin is one plugin as the metrics show it.
type Plugin struct {
	Kind, Name   string
	OutOfProcess bool
	Restarts     uint64
	Counters     map[string]uint64 // the plugin's own (StatsReporter, gossip's Stats, pluginkit's)
}

// Source is what a scrape reads.
type Source struct {
	Node    *node.Node
	IP      *ipservice.Service // optional
	Plugins func() []Plugin    // optional
	Started time.Time
	Exit    bool
}

// Handler serves src's metrics, with the Go runtime's and the process's
// (CPU seconds, memory, open files) beside them.
func Handler(src Source) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&collector{src: src},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("tarzan_"+name, help, labels, nil)
}

var (
	dStart       = desc("start_time_seconds", "When the node started, Unix seconds.")
	dExit        = desc("exit", "1 if this node exits traffic to the Internet.")
	dPeers       = desc("peers", "Peers in this node's view.")
	dLinksUp     = desc("links_up", "Mimic links with an established session.")
	dCircuits    = desc("relay_circuits", "Circuits this node relays for others.")
	dTunnels     = desc("tunnels", "Tunnels this node originated that are open.")
	dClientTuns  = desc("client_tunnels", "The IP service's client tunnels, by state.", "state")
	dLinkBytes   = desc("link_bytes_total", "Bytes of link frames on a mimic link (every frame is 1408 bytes above the transport).", "peer", "direction")
	dLinkFrames  = desc("link_frames_total", "Link frames on a mimic link, by kind (data or cover padding).", "peer", "direction", "kind")
	dLinkUp      = desc("link_up", "1 if the link to the peer has an established session.", "peer")
	dLinkHS      = desc("link_handshake_timestamp_seconds", "When the link's current session was agreed, Unix seconds.", "peer")
	dLinkSeen    = desc("link_last_received_timestamp_seconds", "When the last authenticated frame came from the peer, Unix seconds.", "peer")
	dBuild       = desc("tunnel_build_seconds", "Tunnel builds this node asked for, by result (built or failed), and how long they took.", "result")
	dRepair      = desc("tunnel_repair_seconds", "Repairs of this node's tunnels, by result (repaired or failed), and how long they took.", "result")
	dDrops       = desc("drops_total", "What the node dropped, by reason (core/node's drop_* counters).", "reason")
	dEvents      = desc("events_total", "The node's other counters (frames, cells relayed, circuits, gossip, loops, repairs...), by name.", "event")
	dPlugRestart = desc("plugin_restarts_total", "Children of an out-of-process plugin started after the first.", "kind", "name")
	dPlugOut     = desc("plugin_out_of_process", "1 if the plugin runs as a child process.", "kind", "name")
	dPlugCounter = desc("plugin_counter_total", "A plugin's own counters (its StatsReporter), by name.", "kind", "name", "counter")

	dTunBytes    = desc("tunnel_data_bytes_total", "Bytes of the packets in DATA cells of this node's own tunnels, open and closed (rx: from their exits).", "direction")
	dTunPackets  = desc("tunnel_data_packets_total", "Packets in DATA cells of this node's own tunnels, open and closed.", "direction")
	dExitBytes   = desc("exit_data_bytes_total", "Bytes of the packets in DATA cells of circuits that end at this node as an exit (rx: from the initiators).", "direction")
	dExitPackets = desc("exit_data_packets_total", "Packets in DATA cells of circuits that end at this node as an exit.", "direction")
	dOpenBytes   = desc("open_tunnel_data_bytes_total", "Bytes of DATA packets of each open tunnel of this node, by slot (a small number reused after the tunnel closes: the counter then starts again).", "slot", "direction")
	dOpenAge     = desc("open_tunnel_age_seconds", "How long each open tunnel of this node has existed, by slot.", "slot")
	dOpenIdle    = desc("open_tunnel_idle_seconds", "Since each open tunnel of this node last carried DATA, by slot.", "slot")
)

type collector struct{ src Source }

// Describe sends nothing: the collector is unchecked, since which label
// values exist (links, plugins, counters) changes over the node's life.
func (c *collector) Describe(chan<- *prometheus.Desc) {}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	n := c.src.Node
	st := n.Status()
	if !c.src.Started.IsZero() {
		gauge(dStart, float64(c.src.Started.UnixNano())/1e9)
	}
	gauge(dExit, b2f(c.src.Exit))
	gauge(dPeers, float64(st.Peers))
	gauge(dLinksUp, float64(st.LinksUp))
	gauge(dCircuits, float64(st.Circuits))
	gauge(dTunnels, float64(st.Tunnels))
	c.clientTunnels(gauge)
	for _, l := range n.LinkStats() {
		p := l.Peer.Short()
		counter(dLinkBytes, l.BytesIn(), p, "rx")
		counter(dLinkBytes, l.BytesOut(), p, "tx")
		counter(dLinkFrames, l.FramesIn-l.CoverIn, p, "rx", "data")
		counter(dLinkFrames, l.CoverIn, p, "rx", "cover")
		counter(dLinkFrames, l.FramesOut-l.CoverOut, p, "tx", "data")
		counter(dLinkFrames, l.CoverOut, p, "tx", "cover")
		gauge(dLinkUp, b2f(l.Up), p)
		if !l.Handshake.IsZero() {
			gauge(dLinkHS, unix(l.Handshake), p)
		}
		if !l.LastRecv.IsZero() {
			gauge(dLinkSeen, unix(l.LastRecv), p)
		}
	}
	b := n.TunnelBuilds()
	ch <- histogram(dBuild, b.Built, "built")
	ch <- histogram(dBuild, b.Failed, "failed")
	ch <- histogram(dRepair, b.Repaired, "repaired")
	ch <- histogram(dRepair, b.RepairFailed, "failed")
	for k, v := range st.Counters {
		if reason, ok := strings.CutPrefix(k, "drop_"); ok {
			counter(dDrops, v, reason)
		} else {
			counter(dEvents, v, k)
		}
	}
	c.plugins(gauge, counter)
	c.tunnels(gauge, counter)
}

// tunnels reports the DATA sums and each open tunnel by slot.
func (c *collector) tunnels(gauge func(*prometheus.Desc, float64, ...string), counter func(*prometheus.Desc, uint64, ...string)) {
	n := c.src.Node
	tt := n.TunnelTotals()
	counter(dTunBytes, tt.BytesIn, "rx")
	counter(dTunBytes, tt.BytesOut, "tx")
	counter(dTunPackets, tt.PacketsIn, "rx")
	counter(dTunPackets, tt.PacketsOut, "tx")
	counter(dExitBytes, tt.ExitBytesIn, "rx")
	counter(dExitBytes, tt.ExitBytesOut, "tx")
	counter(dExitPackets, tt.ExitPacketsIn, "rx")
	counter(dExitPackets, tt.ExitPacketsOut, "tx")
	now := time.Now()
	for _, t := range n.TunnelStats() {
		slot := strconv.Itoa(t.Slot)
		counter(dOpenBytes, t.BytesIn, slot, "rx")
		counter(dOpenBytes, t.BytesOut, slot, "tx")
		gauge(dOpenAge, now.Sub(t.Built).Seconds(), slot)
		gauge(dOpenIdle, now.Sub(t.LastUse).Seconds(), slot)
	}
}

func (c *collector) clientTunnels(gauge func(*prometheus.Desc, float64, ...string)) {
	if c.src.IP == nil {
		return
	}
	var used, spare, repairing int
	for _, t := range c.src.IP.ClientTunnels() {
		switch {
		case t.Repairing:
			repairing++
		case t.Spare:
			spare++
		default:
			used++
		}
	}
	gauge(dClientTuns, float64(used), "in_use")
	gauge(dClientTuns, float64(spare), "spare")
	gauge(dClientTuns, float64(repairing), "repairing")
}

func (c *collector) plugins(gauge func(*prometheus.Desc, float64, ...string), counter func(*prometheus.Desc, uint64, ...string)) {
	if c.src.Plugins == nil {
		return
	}
	seen := map[[2]string]bool{}
	for _, p := range c.src.Plugins() {
		key := [2]string{p.Kind, p.Name}
		if seen[key] { // two extra transports of one name: the first speaks for both
			continue
		}
		seen[key] = true
		gauge(dPlugOut, b2f(p.OutOfProcess), p.Kind, p.Name)
		counter(dPlugRestart, p.Restarts, p.Kind, p.Name)
		names := make([]string, 0, len(p.Counters))
		for k := range p.Counters {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			counter(dPlugCounter, p.Counters[k], p.Kind, p.Name, k)
		}
	}
}

func histogram(d *prometheus.Desc, l node.Latencies, result string) prometheus.Metric {
	buckets := make(map[float64]uint64, len(node.BuildBuckets))
	for i, ub := range node.BuildBuckets {
		buckets[ub] = l.Counts[i]
	}
	return prometheus.MustNewConstHistogram(d, l.Count, l.Sum.Seconds(), buckets, result)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }
