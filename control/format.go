package control

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// WriteText prints st the way `wg show` prints an interface: the node,
// then each link with its endpoint, handshake age and traffic, then the
// tunnels, the plugins and what was dropped. With all, every counter too.
// Scripts parse the "  tunnel (group N) through A → B: K tcp flows" lines;
// keep their form.
func (st *StatusReply) WriteText(w io.Writer, all bool) {
	exit := "no"
	if st.Exit {
		exit = "yes"
	}
	fmt.Fprintf(w, "node %s (pid %d)\n  address: %s\n  up: %s\n  exit: %s\n  peers: %d, mimic links up %d/%d, relay circuits %d, own tunnels %d\n",
		st.Short, st.PID, st.Addr, Ago(st.UptimeS), exit, st.Peers, st.LinksUp, len(st.Mimics), st.Circuits, st.Tunnels)
	for _, l := range st.Links {
		writeLink(w, l)
	}
	for _, t := range st.OwnTunnels {
		WriteTunnel(w, t)
	}
	st.writeTraffic(w)
	st.writeTunnels(w)
	if len(st.Plugins) > 0 {
		fmt.Fprintln(w)
	}
	for _, p := range st.Plugins {
		WritePlugin(w, p, all)
	}
	fmt.Fprintf(w, "\ndrops: %s\n", counterList(st.Drops, "none"))
	if st.ControlRefused > 0 {
		fmt.Fprintf(w, "control requests refused: %d\n", st.ControlRefused)
	}
	if all {
		keys := sortedKeys(st.Counters)
		fmt.Fprintln(w, "\ncounters:")
		for _, k := range keys {
			fmt.Fprintf(w, "  %-26s %d\n", k, st.Counters[k])
		}
	}
}

func writeLink(w io.Writer, l LinkReply) {
	fmt.Fprintf(w, "\nlink %s\n", l.Peer)
	if l.Addr != "" {
		fmt.Fprintf(w, "  endpoint: %s\n", l.Addr)
	}
	if l.Up {
		fmt.Fprintf(w, "  state: up for %s\n", Ago(l.UpForS))
	} else {
		fmt.Fprintf(w, "  state: down\n")
	}
	if l.HandshakeAgeS > 0 {
		fmt.Fprintf(w, "  latest handshake: %s ago\n", Ago(l.HandshakeAgeS))
	}
	if l.LastSeenS > 0 {
		fmt.Fprintf(w, "  last received: %s ago\n", Ago(l.LastSeenS))
	}
	fmt.Fprintf(w, "  transfer: %s received, %s sent (cover %d of %d frames in, %d of %d out)\n",
		Bytes(l.RxBytes), Bytes(l.TxBytes), l.CoverRx, l.RxFrames, l.CoverTx, l.TxFrames)
}

// WriteTunnel prints one of the node's tunnels the way writeLink prints
// a link: path, age and DATA traffic.
func WriteTunnel(w io.Writer, t TunnelInfo) {
	role := t.Role
	switch {
	case t.Role == RoleIP && t.Spare:
		role = "ip, spare"
	case t.Role == RoleIP:
		role = fmt.Sprintf("ip, group %d", t.Group)
	}
	fmt.Fprintf(w, "\ntunnel %s (%s)\n", t.ID, role)
	path := strings.Join(t.Hops, " → ")
	if path == "" {
		path = "(being rebuilt)"
	}
	state := ""
	if t.Repairing {
		state = ", repairing"
	}
	fmt.Fprintf(w, "  hops: %s%s\n  age: %s (idle %s)\n", path, state, Ago(t.AgeS), Ago(t.IdleS))
	fmt.Fprintf(w, "  transfer: %s received, %s sent (%d packets in, %d out)\n",
		Bytes(t.RxBytes), Bytes(t.TxBytes), t.RxPackets, t.TxPackets)
}

// writeTraffic prints the sums over every tunnel since the start, and
// what the node carried as an exit.
func (st *StatusReply) writeTraffic(w io.Writer) {
	tt := st.TunnelTraffic
	if tt.Built == 0 && tt.ExitRxPackets == 0 {
		return
	}
	fmt.Fprintf(w, "\ntunnels since start: %d built; %s received, %s sent\n", tt.Built, Bytes(tt.RxBytes), Bytes(tt.TxBytes))
	if st.Exit || tt.ExitRxPackets > 0 {
		fmt.Fprintf(w, "as an exit: %s received, %s sent (%d packets in, %d out)\n",
			Bytes(tt.ExitRxBytes), Bytes(tt.ExitTxBytes), tt.ExitRxPackets, tt.ExitTxPackets)
	}
}

// WritePlugin prints one plugin: where it runs and its own counters, the
// ones that are not zero (all of them with all).
func WritePlugin(w io.Writer, p PluginReply, all bool) {
	where := "in process"
	if !p.InProc {
		where = fmt.Sprintf("pid %d, %d restarts", p.PID, p.Restarts)
	}
	fmt.Fprintf(w, "  plugin %-9s %-9s %s\n", p.Kind, p.Name, where)
	shown := map[string]uint64{}
	for k, v := range p.Counters {
		if v != 0 || all {
			shown[k] = v
		}
	}
	line := "   "
	for _, k := range sortedKeys(shown) {
		item := fmt.Sprintf(" %s %d", k, shown[k])
		if len(line)+len(item) > 100 {
			fmt.Fprintln(w, line)
			line = "   "
		}
		line += item
	}
	if len(shown) > 0 {
		fmt.Fprintln(w, line)
	}
}

func (st *StatusReply) writeTunnels(w io.Writer) {
	if len(st.ClientTunnels) > 0 || len(st.LoopTunnels) > 0 {
		fmt.Fprintln(w)
	}
	for _, ct := range st.ClientTunnels {
		what := fmt.Sprintf("group %d", ct.Flow)
		if ct.Spare {
			what = "spare"
		}
		path := strings.Join(ct.Hops, " → ")
		if path == "" {
			path = "(being rebuilt)"
		}
		state := ""
		if ct.Repairing {
			state = ", repairing"
		}
		fmt.Fprintf(w, "  tunnel (%s) through %s: %d tcp flows, idle %.1f s%s\n", what, path, ct.TCPFlows, ct.IdleMS/1000, state)
	}
	if sent := st.Counters["loops_sent"]; sent > 0 {
		fmt.Fprintf(w, "  loop cover: sent %d, returned %d, lost %d, alerts %d, median RTT %.2f ms\n",
			sent, st.Counters["loops_returned"], st.Counters["loops_lost"], st.Counters["loop_alerts"], st.LoopRTTMS)
	}
	for _, hops := range st.LoopTunnels {
		fmt.Fprintf(w, "  loop tunnel through %s\n", strings.Join(hops, " → "))
	}
}

func counterList(m map[string]uint64, none string) string {
	if len(m) == 0 {
		return none
	}
	var parts []string
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func sortedKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Ago renders seconds the way wg show does: "1 hour, 2 minutes, 3 seconds".
func Ago(s float64) string {
	if s < 1 {
		return fmt.Sprintf("%.2f seconds", s)
	}
	d := time.Duration(s) * time.Second
	var parts []string
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{24 * time.Hour, "day"}, {time.Hour, "hour"}, {time.Minute, "minute"}, {time.Second, "second"}} {
		if n := d / u.d; n > 0 {
			name := u.name
			if n > 1 {
				name += "s"
			}
			parts = append(parts, fmt.Sprintf("%d %s", n, name))
			d -= n * u.d
		}
	}
	return strings.Join(parts, ", ")
}

// Bytes renders a byte count in binary units, like wg show.
func Bytes(b uint64) string {
	const unit = 1024
	if b < unit {
		return fmt.Sprintf("%d B", b)
	}
	v, u := float64(b), 0
	for v >= unit && u < 4 {
		v /= unit
		u++
	}
	return fmt.Sprintf("%.2f %ciB", v, "KMGT"[u-1])
}

// WritePluginCounters prints, after `tarzan plugin list -c`'s table, the
// plugins of the node whose data directory is dataDir with their own
// counters; nothing when the node does not run.
func WritePluginCounters(w io.Writer, dataDir string) {
	c, err := ClientForDir(dataDir, nil)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if st, err := c.Status(ctx); err == nil && len(st.Plugins) > 0 {
		fmt.Fprintln(w, "\nthe running node's plugins and their counters (also in 'tarzan status' and /metrics):")
		for _, p := range st.Plugins {
			WritePlugin(w, p, false)
		}
	}
}
