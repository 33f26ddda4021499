package localnet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestIdleAB measures the idle cost of 12-node loopback networks run by
// two or more tarzan binaries, one network at a time, alternated (A B A
// B ...): every plugin out of process, cover none, node 1 a SOCKS
// client, the others pnat exits; one 1 MiB fetch through SOCKS, a
// settle, then Net.Idle over a window. Opt-in, as it takes minutes:
//
//	TARZAN_IDLE_AB="/path/base /path/new" go test ./host/localnet -run TestIdleAB -v
//
// TARZAN_IDLE_DISCOVERY (gossip, the default, or static: bench compare's
// network), TARZAN_IDLE_ROUNDS (3), TARZAN_IDLE_SETTLE (5s) and
// TARZAN_IDLE_WINDOW (20s) change the shape. It prints per round and
// binary the cores and wake-ups per node, node 2's (a relay's), and the
// per-node mean of each kind of process.
func TestIdleAB(t *testing.T) {
	exes := strings.Fields(os.Getenv("TARZAN_IDLE_AB"))
	if len(exes) == 0 {
		t.Skip("set TARZAN_IDLE_AB to the tarzan binaries to compare")
	}
	disc := envOr("TARZAN_IDLE_DISCOVERY", "gossip")
	rounds := 3
	fmt.Sscan(envOr("TARZAN_IDLE_ROUNDS", "3"), &rounds)
	settle, err1 := time.ParseDuration(envOr("TARZAN_IDLE_SETTLE", "5s"))
	window, err2 := time.ParseDuration(envOr("TARZAN_IDLE_WINDOW", "20s"))
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	srv, err := StartFileServer(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	for r := 1; r <= rounds; r++ {
		for _, exe := range exes {
			got, err := idleOnce(t, exe, disc, settle, window, srv)
			if err != nil {
				t.Logf("round %d %s: %v", r, exe, err)
				continue
			}
			t.Logf("round %d %s: %s", r, exe, got)
		}
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func idleOnce(t *testing.T, exe, disc string, settle, window time.Duration, srv *FileServer) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute+settle+window)
	defer cancel()
	ip, err := NewIPService(srv.Addr)
	if err != nil {
		return "", err
	}
	nw, err := StartLoopback(ctx, filepath.Join(t.TempDir(), "net"), exe, 12, Loopback{Cover: "none", Discovery: disc, IP: ip}, nil)
	if err != nil {
		return "", err
	}
	defer nw.Stop()
	if _, err := FetchViaSOCKS(ctx, ip.SOCKS, srv, ip.Alias); err != nil {
		return "", err
	}
	time.Sleep(settle)
	nodes, err := nw.Idle(ctx, window)
	if err != nil {
		return "", err
	}
	var cores, wake float64
	kc, kw := map[string]float64{}, map[string]float64{}
	for _, n := range nodes {
		cores += n.Cores
		wake += n.Switches
		for _, p := range n.Procs {
			k := p.Name
			if strings.HasSuffix(strings.Fields(k)[0], "tarzan") || strings.Contains(k, " node") {
				k = "node"
			}
			kc[k] += p.Cores / float64(len(nodes))
			kw[k] += p.Switches / float64(len(nodes))
		}
	}
	c := float64(len(nodes))
	var b strings.Builder
	fmt.Fprintf(&b, "per node %.2f millicores, %.1f wake-ups/s; node 2 %.2f millicores, %.1f wake-ups/s",
		cores/c*1000, wake/c, nodes[1].Cores*1000, nodes[1].Switches)
	var ks []string
	for k := range kc {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for _, k := range ks {
		fmt.Fprintf(&b, "; %s %.3f mc %.1f/s", k, kc[k]*1000, kw[k])
	}
	return b.String(), nil
}
