package tunbench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tarzan-net/tarzan/host/netns"
)

// The workloads, each an unmodified tool run inside the client's
// namespace against the server's address through the overlay's TUN.

// iperfResult is what one iperf3 -J run reports.
type iperfResult struct {
	Bytes       float64 // received by the server
	BitsPerSec  float64 // as the server received them
	LostPercent float64 // UDP only
}

// iperfJSON is the part of iperf3's -J report read here. TCP: end.sum_received
// (the server's view); UDP: end.sum (iperf3 ≥ 3.12 also has sum_received,
// whose lost figures are the server's too).
type iperfJSON struct {
	Error string `json:"error"`
	End   struct {
		SumReceived *struct {
			Bytes         float64 `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
		} `json:"sum_received"`
		Sum *struct {
			Bytes         float64 `json:"bytes"`
			BitsPerSecond float64 `json:"bits_per_second"`
			LostPercent   float64 `json:"lost_percent"`
		} `json:"sum"`
	} `json:"end"`
}

// parseIperf reads an iperf3 -J report.
func parseIperf(b []byte, udp bool) (iperfResult, error) {
	var j iperfJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return iperfResult{}, fmt.Errorf("iperf3 report: %w", err)
	}
	if j.Error != "" {
		return iperfResult{}, fmt.Errorf("iperf3: %s", j.Error)
	}
	if udp {
		if j.End.Sum == nil {
			return iperfResult{}, fmt.Errorf("iperf3 report has no end.sum")
		}
		r := iperfResult{Bytes: j.End.Sum.Bytes, BitsPerSec: j.End.Sum.BitsPerSecond, LostPercent: j.End.Sum.LostPercent}
		if s := j.End.SumReceived; s != nil && s.Bytes > 0 {
			r.Bytes, r.BitsPerSec = s.Bytes, s.BitsPerSecond
		}
		return r, nil
	}
	if j.End.SumReceived == nil {
		return iperfResult{}, fmt.Errorf("iperf3 report has no end.sum_received")
	}
	return iperfResult{Bytes: j.End.SumReceived.Bytes, BitsPerSec: j.End.SumReceived.BitsPerSecond}, nil
}

// udpPayload is the UDP datagram size of the sweep: 1200 bytes fit a
// 1280-byte IPv6 MTU, so neither overlay fragments.
const udpPayload = 1200

// iperfServer starts `iperf3 -s` in ns and waits until it listens (a
// client that comes first is refused).
func iperfServer(ctx context.Context, set *netns.Set, ns, dir string) error {
	log := filepath.Join(dir, "iperf3-server.log")
	p, err := set.Start("iperf3 -s", ns, log, "iperf3", "-s", "--forceflush", "-p", strconv.Itoa(iperfPort))
	if err != nil {
		return err
	}
	if err := waitLog(ctx, log, "Server listening", p, 10*time.Second); err != nil {
		return fmt.Errorf("iperf3 -s: %w", err)
	}
	return nil
}

// tcpOpts are the TCP test's iperf3 options, the same for every overlay.
type tcpOpts struct {
	reverse bool // -R: the server sends (a download through the TUN)
	streams int  // -P: parallel streams (0 or 1: one)
}

// args are the iperf3 flags for o.
func (o tcpOpts) args() []string {
	var a []string
	if o.reverse {
		a = append(a, "-R")
	}
	if o.streams > 1 {
		a = append(a, "-P", strconv.Itoa(o.streams))
	}
	return a
}

// iperf runs one iperf3 client in namespace ns against target (port
// iperfPort); rate "" is TCP (with tcp's options), else a UDP rate such
// as "100M". Its report is kept in dir.
func iperf(ctx context.Context, dir, label, ns, target string, secs int, rate string, tcp tcpOpts) (iperfResult, error) {
	args := []string{"netns", "exec", ns, "iperf3", "-c", target, "-p", strconv.Itoa(iperfPort), "-t", strconv.Itoa(secs),
		"-J", "--connect-timeout", "5000"}
	if rate == "" {
		args = append(args, tcp.args()...)
	} else {
		// The server's per-second loss goes into the kept report too.
		args = append(args, "-u", "-b", rate, "-l", strconv.Itoa(udpPayload), "--get-server-output")
	}
	cctx, cancel := context.WithTimeout(ctx, time.Duration(secs+20)*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, "ip", args...).Output()
	os.WriteFile(filepath.Join(dir, label+".json"), out, 0o644)
	r, perr := parseIperf(out, rate != "")
	if perr != nil {
		if err != nil {
			return r, fmt.Errorf("iperf3 %s: %v (%v)", label, err, perr)
		}
		return r, fmt.Errorf("iperf3 %s: %w", label, perr)
	}
	return r, nil
}

// udpSweep runs the UDP rates (Mbit/s) in increasing order and returns
// the highest with less than maxLoss percent lost, stopping at the first
// that loses more; one more step halfway between the last that passed
// and the first that failed narrows the answer (0: even the lowest lost
// too much).
func udpSweep(ctx context.Context, dir, who, label, ns, target string, secs int, rates []float64, maxLoss float64, progress func(string, ...any)) (float64, error) {
	best, failed := 0.0, 0.0
	step := func(r float64) (bool, error) {
		res, err := iperf(ctx, dir, fmt.Sprintf("%s-udp%g", label, r), ns, target, secs, fmt.Sprintf("%gM", r), tcpOpts{})
		if err != nil {
			return false, err
		}
		progress("  %s: UDP %g Mbit/s: %.2f %% lost", who, r, res.LostPercent)
		return res.LostPercent < maxLoss, nil
	}
	for _, r := range rates {
		ok, err := step(r)
		if err != nil {
			return best, err
		}
		if !ok {
			failed = r
			break
		}
		best = r
	}
	if best > 0 && failed > 0 {
		mid := math.Round((best + failed) / 2)
		if ok, err := step(mid); err != nil {
			return best, err
		} else if ok {
			best = mid
		}
	}
	return best, nil
}

var pingTimeRE = regexp.MustCompile(`time=([0-9.]+) ms`)

// parsePing returns every round-trip time (ms) in ping's output.
func parsePing(out []byte) []float64 {
	var rtts []float64
	for _, m := range pingTimeRE.FindAllSubmatch(out, -1) {
		if v, err := strconv.ParseFloat(string(m[1]), 64); err == nil {
			rtts = append(rtts, v)
		}
	}
	return rtts
}

// ping sends count echo requests 50 ms apart from ns to target and
// returns the median round trip in ms.
func ping(ctx context.Context, ns, target string, count int) (float64, error) {
	cctx, cancel := context.WithTimeout(ctx, time.Duration(count)*100*time.Millisecond+10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, "ip", "netns", "exec", ns, "ping", "-n", "-c", strconv.Itoa(count), "-i", "0.05", "-W", "2", target).Output()
	rtts := parsePing(out)
	if len(rtts) == 0 {
		return 0, fmt.Errorf("ping %s from %s: no reply (%v)", target, ns, err)
	}
	sort.Float64s(rtts)
	return median(rtts), nil
}

// waitPing waits until target answers one ping from ns, up to within.
func waitPing(ctx context.Context, ns, target string, within time.Duration) error {
	deadline := time.Now().Add(within)
	var last []byte
	for time.Now().Before(deadline) {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		out, err := exec.CommandContext(cctx, "ip", "netns", "exec", ns, "ping", "-n", "-c", "1", "-W", "1", target).CombinedOutput()
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		last = out
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s does not answer ping from %s after %v: %s", target, ns, within, strings.TrimSpace(string(bytes.TrimSpace(last))))
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
