// Command checkdemo checks the JSON printed by `tarzan demo --json`: at
// least one tunnel of 3 hops, all hops in distinct /16 domains, an RTT for
// every hop, and plugin child processes under every node. CI runs it.
package main

import (
	"encoding/json"
	"fmt"
	"os"
)

type result struct {
	Nodes   int `json:"nodes"`
	Tunnels []struct {
		SetupMS      float64 `json:"setup_ms"`
		MimicChainOK bool    `json:"mimic_chain_ok"`
		Hops         []struct {
			ID     string  `json:"id"`
			Addr   string  `json:"addr"`
			Domain string  `json:"domain"`
			RTTMS  float64 `json:"rtt_ms"`
		} `json:"hops"`
	} `json:"tunnels"`
	PluginChildren map[string]int `json:"plugin_children"`
	Fetch          *struct {
		Bytes       int64  `json:"bytes"`
		SHA256Match bool   `json:"sha256_match"`
		ServerSaw   string `json:"server_saw"`
		ClientAddr  string `json:"client_addr"`
	} `json:"fetch"`
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: checkdemo FILE.json")
		os.Exit(2)
	}
	b, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail("%v", err)
	}
	var r result
	if err := json.Unmarshal(b, &r); err != nil {
		fail("decoding demo output: %v", err)
	}
	if r.Nodes < 12 {
		fail("demo ran %d nodes, want at least 12", r.Nodes)
	}
	ok3 := false
	for i, t := range r.Tunnels {
		if !t.MimicChainOK {
			fail("tunnel %d: consecutive hops are not mutual mimics", i+1)
		}
		domains := map[string]bool{}
		for j, h := range t.Hops {
			if h.RTTMS <= 0 {
				fail("tunnel %d hop %d has no RTT", i+1, j+1)
			}
			if domains[h.Domain] {
				fail("tunnel %d repeats domain %s", i+1, h.Domain)
			}
			domains[h.Domain] = true
		}
		if len(t.Hops) >= 3 {
			ok3 = true
		}
	}
	if !ok3 {
		fail("no tunnel of 3 hops")
	}
	for id, c := range r.PluginChildren {
		if c < 3 {
			fail("node %s had %d plugin children, want 3 (transport, discovery, cover)", id, c)
		}
	}
	if f := r.Fetch; f != nil {
		if !f.SHA256Match || f.Bytes == 0 {
			fail("fetch through SOCKS5: %d bytes, sha256 match %v", f.Bytes, f.SHA256Match)
		}
		if f.ServerSaw == "" || f.ServerSaw == f.ClientAddr {
			fail("the server saw %q, the client is %q: it must see an exit", f.ServerSaw, f.ClientAddr)
		}
	} else if os.Getenv("CHECKDEMO_NO_FETCH") == "" {
		fail("no fetch in the demo output")
	}
	fmt.Printf("demo ok: %d nodes, %d tunnels\n", r.Nodes, len(r.Tunnels))
}

func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "checkdemo: "+format+"\n", a...)
	os.Exit(1)
}
