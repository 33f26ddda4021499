package localnet

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/tarzan-net/tarzan/control"
)

// DemoResult is what `tarzan demo --json` prints (scripts/checkdemo reads it).
type DemoResult struct {
	Nodes             int            `json:"nodes"`
	MembershipSeconds float64        `json:"membership_seconds"`
	Tunnels           []DemoTunnel   `json:"tunnels"`
	PluginChildren    map[string]int `json:"plugin_children"` // node short ID → plugin child processes seen
	Fetch             *FetchResult   `json:"fetch,omitempty"`
	Dir               string         `json:"dir,omitempty"`
}

// DemoTunnel is a tunnel report plus the demo's check that consecutive
// hops are mutual mimics.
type DemoTunnel struct {
	control.TunnelReply
	MimicChainOK bool `json:"mimic_chain_ok"`
}

// Print writes the demo's human-readable report.
func (res *DemoResult) Print(w io.Writer) {
	fmt.Fprintf(w, "%d nodes joined and linked to their mimics in %.1f s\n", res.Nodes, res.MembershipSeconds)
	for i, t := range res.Tunnels {
		fmt.Fprintf(w, "\ntunnel %d: setup %.2f ms, consecutive hops mutual mimics: %v\n", i+1, t.SetupMS, t.MimicChainOK)
		fmt.Fprintf(w, "  %-4s %-9s %-18s %-15s %s\n", "hop", "id", "addr", "domain", "rtt (median)")
		for j, h := range t.Hops {
			fmt.Fprintf(w, "  %-4d %-9s %-18s %-15s %.3f ms\n", j+1, h.ID, h.Addr, h.Domain, h.RTTMS)
		}
	}
	if f := res.Fetch; f != nil {
		fmt.Fprintf(w, "\nfetched %s through SOCKS5: %d bytes in %.2f s (%.1f Mbit/s), sha256 match: %v\n", f.URL, f.Bytes, f.Seconds, f.MBitPerSec, f.SHA256Match)
		fmt.Fprintf(w, "the server saw %s (an exit); the client is %s\n", f.ServerSaw, f.ClientAddr)
	}
	if counts := slices.Sorted(maps.Values(res.PluginChildren)); len(counts) > 0 {
		fmt.Fprintf(w, "\nplugin child processes per node: %d to %d\n", counts[0], counts[len(counts)-1])
	}
}

// KeyValues is a repeatable KEY=VALUE command-line flag (flag.Value):
// `demo -transport-option`.
type KeyValues map[string]string

func (kv *KeyValues) String() string { return fmt.Sprint(map[string]string(*kv)) }

// Set adds one KEY=VALUE.
func (kv *KeyValues) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	if *kv == nil {
		*kv = KeyValues{}
	}
	(*kv)[k] = v
	return nil
}
