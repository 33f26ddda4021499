package localnet

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/tarzan-net/tarzan/control"
)

// MimicChain asks each node on a tunnel's path, from the first node on,
// for its mimics and checks that the next hop is among them.
func (nw *Net) MimicChain(ctx context.Context, rep *control.TunnelReply) bool {
	byShort := map[string]*Node{}
	for _, n := range nw.Nodes {
		byShort[n.ID.Short()] = n
	}
	prev := nw.Nodes[0]
	for _, h := range rep.Hops {
		st, err := prev.Client.Status(ctx)
		if err != nil {
			return false
		}
		found := false
		for _, m := range st.Mimics {
			found = found || m.ID == h.ID
		}
		if !found {
			return false
		}
		if prev = byShort[h.ID]; prev == nil {
			return false
		}
	}
	return true
}

// Children counts the node's live child processes (its plugins; Linux /proc).
func (n *Node) Children() int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return -1
	}
	parent := strconv.Itoa(n.PID())
	count := 0
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		if f := strings.Fields(s[i+1:]); len(f) > 1 && f[1] == parent && f[0] != "Z" {
			count++
		}
	}
	return count
}
