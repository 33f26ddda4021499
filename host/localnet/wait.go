package localnet

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tarzan-net/tarzan/control"
)

// pollEvery is how often WaitJoined asks every node for its status.
const pollEvery = 200 * time.Millisecond

// WaitJoined waits until every node's control API answers, every node
// knows every other and has all its mimic links up. It reports each
// change on Progress and sets JoinedIn. It fails when a node exits, or when ctx ends,
// saying what it saw: which nodes lag, what they dropped, and the end of
// their logs.
func (nw *Net) WaitJoined(ctx context.Context) error {
	last, answering, start := "", false, time.Now()
	for {
		r, err := nw.round(ctx)
		if err != nil {
			return err
		}
		if r.answering == len(nw.Nodes) && !answering {
			answering = true
			nw.progress("all %d nodes running; waiting for membership and mimic links", len(nw.Nodes))
		}
		line := r.String(len(nw.Nodes))
		if line != last {
			nw.progress("  %s", line)
			last = line
		}
		if r.joined == len(nw.Nodes) {
			nw.JoinedIn = time.Since(start)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("membership did not converge: %w (%s)%s", ctx.Err(), line, nw.Laggards())
		case <-time.After(pollEvery):
		}
	}
}

// roundResult is what one round of status requests saw.
type roundResult struct {
	answering, joined, up, links int
	lagging                      []string
}

func (r roundResult) String(nodes int) string {
	s := fmt.Sprintf("%d/%d nodes answering, %d know every peer with all mimic links up (%d/%d links up)", r.answering, nodes, r.joined, r.up, r.links)
	if len(r.lagging) > 0 && len(r.lagging) <= 4 {
		s += "; not yet: " + strings.Join(r.lagging, " ")
	}
	return s
}

func (nw *Net) round(ctx context.Context) (roundResult, error) {
	var r roundResult
	for _, n := range nw.Nodes {
		if n.Exited() {
			return r, fmt.Errorf("node %s (%s) exited:\n%s", n.Name, n.ID.Short(), n.LogTail(20))
		}
		if !n.connect() {
			continue
		}
		st, err := n.Client.Status(ctx)
		if err != nil {
			continue
		}
		r.answering++
		if joined(st, len(nw.Nodes)) {
			r.joined++
		} else {
			r.lagging = append(r.lagging, fmt.Sprintf("%s (%d peers, %d/%d links)", n.Name, st.Peers, st.LinksUp, len(st.Mimics)))
		}
		r.up += st.LinksUp
		r.links += len(st.Mimics)
	}
	return r, nil
}

func joined(st *control.StatusReply, nodes int) bool {
	return st.Peers == nodes-1 && len(st.Mimics) > 0 && st.LinksUp == len(st.Mimics)
}

// connect sets n.Client once the node has recorded its control address.
func (n *Node) connect() bool {
	if n.Client != nil {
		return true
	}
	c, err := control.ClientForDir(n.Dir, n.HTTP) // address and, on TCP, cookie
	if err != nil || c.Addr == "" {
		return false
	}
	n.Client = c
	return true
}

// Laggards describes the nodes that have not joined, for an error
// message: which peers they lack, what they dropped, the end of their log.
func (nw *Net) Laggards() string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var b strings.Builder
	for _, n := range nw.Nodes {
		if !n.connect() {
			fmt.Fprintf(&b, "\n  node %s: no control address yet; its log ends:\n%s", n.Name, n.LogTail(10))
			continue
		}
		st, err := n.Client.Status(ctx)
		if err != nil {
			fmt.Fprintf(&b, "\n  node %s: no status: %v; its log ends:\n%s", n.Name, err, n.LogTail(10))
			continue
		}
		if joined(st, len(nw.Nodes)) {
			continue
		}
		drops := map[string]uint64{}
		for k, v := range st.Counters {
			if strings.HasPrefix(k, "drop_") {
				drops[k] = v
			}
		}
		fmt.Fprintf(&b, "\n  node %s %s (%s): knows %d/%d peers, %d/%d mimic links up, drops %v; its log ends:\n%s",
			n.Name, st.Short, st.Addr, st.Peers, len(nw.Nodes)-1, st.LinksUp, len(st.Mimics), drops, n.LogTail(10))
	}
	return b.String()
}

// LogTail is the last lines of the node's log, indented.
func (n *Node) LogTail(lines int) string {
	b, err := os.ReadFile(n.LogPath())
	if err != nil {
		return "    " + err.Error()
	}
	return "    " + strings.ReplaceAll(tail(string(b), lines), "\n", "\n    ")
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
