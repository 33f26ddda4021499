package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/control"
	"github.com/tarzan-net/tarzan/core/loopcover"
	"github.com/tarzan-net/tarzan/host"
)

func runStatus(args []string) error {
	fs := newFlags("status", "status [-c node.toml | -control HOST:PORT] [-json]")
	cfgPath := fs.String("c", "node.toml", "configuration file of the running node")
	addr := fs.String("control", "", "control API address (default: read from the node's data directory)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *addr == "" {
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return err
		}
		if *addr, err = controlAddr(cfg); err != nil {
			return fmt.Errorf("is the node running? %w", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := (&control.Client{Addr: *addr}).Status(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	printStatus(st)
	return nil
}

// controlAddr reads the control API address a node running with cfg
// recorded in its data directory.
func controlAddr(cfg *config.Config) (string, error) {
	b, err := os.ReadFile(filepath.Join(cfg.Node.DataDir, host.ControlAddrFile))
	return strings.TrimSpace(string(b)), err
}

func printStatus(st *control.StatusReply) {
	fmt.Printf("node %s at %s (pid %d)\npeers %d, mimic links up %d/%d, relay circuits %d, own tunnels %d\n",
		st.Short, st.Addr, st.PID, st.Peers, st.LinksUp, len(st.Mimics), st.Circuits, st.Tunnels)
	for _, m := range st.Mimics {
		state := "down"
		if m.Up {
			state = "up"
		}
		fmt.Printf("  mimic %s %-21s %s\n", m.ID, m.Addr, state)
	}
	for _, p := range st.Plugins {
		where := "in process"
		if !p.InProc {
			where = fmt.Sprintf("pid %d, %d restarts", p.PID, p.Restarts)
		}
		fmt.Printf("  plugin %-9s %-9s %s\n", p.Kind, p.Name, where)
	}
	if sent := st.Counters[loopcover.EventLoopsSent]; sent > 0 {
		fmt.Printf("  loop cover: sent %d, returned %d, lost %d, alerts %d, median RTT %.2f ms\n",
			sent, st.Counters[loopcover.EventLoopsReturned], st.Counters[loopcover.EventLoopsLost], st.Counters[loopcover.EventLoopAlerts], st.LoopRTTMS)
		for _, hops := range st.LoopTunnels {
			fmt.Printf("    loop tunnel through %s\n", strings.Join(hops, " → "))
		}
	}
	printClientTunnels(st.ClientTunnels)
	keys := make([]string, 0, len(st.Counters))
	for k := range st.Counters {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Printf("  %-26s %d\n", k, st.Counters[k])
	}
}

func printClientTunnels(cts []control.ClientTunnelReply) {
	for _, ct := range cts {
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
		fmt.Printf("  tunnel (%s) through %s: %d tcp flows, idle %.1f s%s\n", what, path, ct.TCPFlows, ct.IdleMS/1000, state)
	}
}
