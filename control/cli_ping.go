package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// PingResult is `tarzan tunnel ping -json`: every round's reply and the
// statistics per hop.
type PingResult struct {
	ID     string        `json:"id"`
	Rounds []TunnelReply `json:"rounds"`
	Hops   []HopSummary  `json:"hops"`
}

// HopSummary is one hop's ping statistics, as ping(8) prints them.
type HopSummary struct {
	ID       string  `json:"id"`
	Sent     int     `json:"sent"`
	Received int     `json:"received"`
	MinMS    float64 `json:"min_ms"`
	AvgMS    float64 `json:"avg_ms"`
	MaxMS    float64 `json:"max_ms"`
	MdevMS   float64 `json:"mdev_ms"`
}

func (c *CLI) ping(args []string) error {
	f := c.flags("ping", "ping [-c 3] [-i 1s] [-json] [-config node.toml] ID\n\n"+
		"Pings every hop of an open tunnel of the node (any listed by 'tarzan tunnel list')\n"+
		"once per round and prints the round trips, then each hop's statistics.\n"+
		"Ctrl-C stops early and prints the statistics so far.")
	count := f.Int("c", 3, "rounds: each pings every hop once (1..1000)")
	interval := f.Duration("i", time.Second, "wait between rounds")
	pos, err := f.parse(args, 1, 1)
	if err != nil {
		return err
	}
	if *count < 1 || *count > 1000 {
		return fmt.Errorf("-c %d: between 1 and 1000 rounds", *count)
	}
	cl, err := c.client(f)
	if err != nil {
		return err
	}
	interrupt := c.Interrupt
	if interrupt == nil {
		interrupt = interrupted
	}
	ctx, stop := interrupt()
	defer stop()
	id := pos[0]
	res := PingResult{ID: id}
	text := !*f.json
	for round := 1; round <= *count; round++ {
		if round > 1 && !sleepCtx(ctx, *interval) {
			break
		}
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		rep, err := cl.PingTunnelN(rctx, id, 1)
		cancel()
		if ctx.Err() != nil {
			break // Ctrl-C: statistics of the rounds so far
		}
		if err != nil {
			if len(res.Rounds) == 0 {
				return explain(err, id)
			}
			fmt.Fprintf(c.Err, "round %d: %v\n", round, explain(err, id))
			break
		}
		if text && round == 1 {
			fmt.Fprintf(c.Out, "PING tunnel %s: %d hops\n", id, len(rep.Hops))
		}
		res.Rounds = append(res.Rounds, *rep)
		if text {
			writeRound(c.Out, round, rep)
		}
	}
	res.Hops = summarize(res.Rounds)
	if *f.json {
		return c.printJSON(res)
	}
	writeSummary(c.Out, id, res.Hops)
	if len(res.Hops) > 0 && res.Hops[len(res.Hops)-1].Received == 0 {
		return errors.New("no reply from the last hop")
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func writeRound(w io.Writer, round int, rep *TunnelReply) {
	var cols []string
	for i, h := range rep.Hops {
		rtt := "lost"
		if h.Lost == 0 {
			rtt = fmt.Sprintf("%.2f ms", h.RTTMS)
		}
		cols = append(cols, fmt.Sprintf("hop %d %s %9s", i+1, h.ID, rtt))
	}
	fmt.Fprintf(w, "seq=%-3d %s\n", round, strings.Join(cols, "   "))
}

// summarize computes each hop's statistics over the rounds (the hops of
// the first round; a repair that changed them is counted by position).
func summarize(rounds []TunnelReply) []HopSummary {
	if len(rounds) == 0 {
		return nil
	}
	out := make([]HopSummary, len(rounds[0].Hops))
	rtts := make([][]float64, len(out))
	for i, h := range rounds[0].Hops {
		out[i].ID = h.ID
	}
	for _, r := range rounds {
		for i, h := range r.Hops {
			if i >= len(out) {
				break
			}
			out[i].Sent += len(h.RTTsMS) + h.Lost
			rtts[i] = append(rtts[i], h.RTTsMS...)
		}
	}
	for i := range out {
		s := &out[i]
		s.Received = len(rtts[i])
		if s.Received == 0 {
			continue
		}
		s.MinMS, s.MaxMS = math.Inf(1), 0
		var sum, sq float64
		for _, v := range rtts[i] {
			s.MinMS, s.MaxMS = math.Min(s.MinMS, v), math.Max(s.MaxMS, v)
			sum += v
			sq += v * v
		}
		n := float64(s.Received)
		s.AvgMS = sum / n
		s.MdevMS = math.Sqrt(math.Max(sq/n-s.AvgMS*s.AvgMS, 0))
	}
	return out
}

func writeSummary(out io.Writer, id string, hops []HopSummary) {
	if len(hops) == 0 {
		return
	}
	fmt.Fprintf(out, "--- tunnel %s ping statistics ---\n", id)
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for i, h := range hops {
		loss := 100 * float64(h.Sent-h.Received) / float64(max(h.Sent, 1))
		fmt.Fprintf(w, "hop %d\t%s\t%d sent, %d received, %.0f%% loss", i+1, h.ID, h.Sent, h.Received, loss)
		if h.Received > 0 {
			fmt.Fprintf(w, ", rtt min/avg/max/mdev = %.2f/%.2f/%.2f/%.2f ms", h.MinMS, h.AvgMS, h.MaxMS, h.MdevMS)
		}
		fmt.Fprintln(w)
	}
	w.Flush()
}
