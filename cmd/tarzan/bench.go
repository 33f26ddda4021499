package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/tarzan-net/tarzan/host"
	"github.com/tarzan-net/tarzan/plugins/builtin"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
	"github.com/tarzan-net/tarzan/sdk/transport"
	"github.com/tarzan-net/tarzan/sdk/transport/transportplugin"
)

// `tarzan bench transports` measures how fast each shipped transport moves
// full-size link frames over loopback, in process and as the child process
// a node really runs, side by side in one run with the same sender window:
// the design target is out of process ≥ 80 % of in process.
//
// One case is a sender and a receiver transport, both in the same mode.
// The sender writes batches of transport.BatchSize frames and keeps at
// most window frames in flight, so the figure is a rate the receiver
// sustains rather than how fast a socket buffer overflows; frames that do
// not arrive within stallAfter are written off as lost and free the
// window. A case stops after its frame count or its time cap.

const stallAfter = 100 * time.Millisecond

// defaultWindow is the kcp transport's per-peer queue: a larger window
// overflows that queue, and the kcp rows would measure its drops, not its
// speed. Every transport gets the same window.
const defaultWindow = 1024

// Frame markers: warm-up frames (which bring DTLS and KCP sessions up) are
// not counted, so they must be told apart from measured ones.
const (
	warmupFrame   = 0
	measuredFrame = 1
)

type benchConfig struct {
	frames int
	window int
	limit  time.Duration // per case
	self   string        // executable serving `plugin serve transport NAME`
}

// benchCase is one row of the report.
type benchCase struct {
	Transport    string  `json:"transport"`
	Mode         string  `json:"mode"` // "in-process" or "out-of-process"
	Sent         int64   `json:"sent"`
	Received     int64   `json:"received"`
	Seconds      float64 `json:"seconds"`
	FramesPerSec float64 `json:"frames_per_sec"`
	MbitPerSec   float64 `json:"mbit_per_sec"`
	LossPct      float64 `json:"loss_pct"`
	Capped       bool    `json:"capped,omitempty"`       // stopped by the time cap
	OutInRatio   float64 `json:"out_in_ratio,omitempty"` // out-of-process rows: frames/s ÷ in-process frames/s
	Error        string  `json:"error,omitempty"`        // the case could not run
}

type benchReport struct {
	FrameBytes int         `json:"frame_bytes"`
	Frames     int         `json:"frames_per_case"`
	Window     int         `json:"window"`
	CapSeconds float64     `json:"cap_seconds"`
	GOMAXPROCS int         `json:"gomaxprocs"`
	Cases      []benchCase `json:"cases"`
}

func runBench(args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(os.Stderr, "Usage:\n  tarzan bench transports [-json] [-frames N] [-transports udp,dtls,kcp]\n\nRun 'tarzan bench transports -h' for its flags.\n")
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	if args[0] != "transports" {
		return fmt.Errorf("unknown bench %q (transports)", args[0])
	}
	return runBenchTransports(args[1:])
}

func runBenchTransports(args []string) error {
	fs := newFlags("bench transports", "bench transports [-json] [-frames N] [-transports udp,dtls,kcp]\n\n"+
		"Frames/s and Mbit/s of 1408-byte frames over loopback for each shipped\n"+
		"transport, in process and out of process (as `tarzan plugin serve\n"+
		"transport NAME` children), with the same sender window in one run.")
	asJSON := fs.Bool("json", false, "print one JSON object on stdout instead of a table")
	frames := fs.Int("frames", 200_000, "frames per case")
	names := fs.String("transports", "udp,dtls,kcp", "comma-separated shipped transports to measure")
	window := fs.Int("window", defaultWindow, "most frames in flight from the sender")
	limit := fs.Duration("max", 10*time.Second, "time cap per case")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *frames <= 0 || *window <= 0 || *limit <= 0 {
		fs.Usage()
		return errUsage
	}
	var list []string
	for _, n := range strings.Split(*names, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		if _, ok := builtin.Transports[n]; !ok {
			return host.UnknownPlugin(builtin.KindTransport, n)
		}
		list = append(list, n)
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding own executable to serve transports out of process: %w", err)
	}
	cfg := benchConfig{frames: *frames, window: *window, limit: *limit, self: self}
	rep := benchReport{FrameBytes: transport.MaxDatagram, Frames: cfg.frames, Window: cfg.window,
		CapSeconds: cfg.limit.Seconds(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	for _, name := range list {
		in := benchTransport(name, "in-process", cfg)
		out := benchTransport(name, "out-of-process", cfg)
		if in.FramesPerSec > 0 && out.Error == "" {
			out.OutInRatio = out.FramesPerSec / in.FramesPerSec
		}
		rep.Cases = append(rep.Cases, in, out)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printBench(rep)
	return nil
}

func printBench(rep benchReport) {
	fmt.Printf("%d-byte frames over loopback, %d per case (cap %v), window %d, GOMAXPROCS %d\n",
		rep.FrameBytes, rep.Frames, time.Duration(rep.CapSeconds*float64(time.Second)), rep.Window, rep.GOMAXPROCS)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "TRANSPORT\tMODE\tFRAMES/S\tMBIT/S\tLOSS %\tOUT/IN")
	for _, c := range rep.Cases {
		if c.Error != "" {
			fmt.Fprintf(w, "%s\t%s\terror: %s\n", c.Transport, c.Mode, c.Error)
			continue
		}
		ratio, mode := "", c.Mode
		if c.OutInRatio > 0 {
			ratio = fmt.Sprintf("%.0f %%", 100*c.OutInRatio)
		}
		if c.Capped {
			mode += " (time cap)"
		}
		fmt.Fprintf(w, "%s\t%s\t%.0f\t%.0f\t%.2f\t%s\n", c.Transport, mode, c.FramesPerSec, c.MbitPerSec, c.LossPct, ratio)
	}
	w.Flush()
}

// benchTransport runs one case and never fails: errors go in the row.
func benchTransport(name, mode string, cfg benchConfig) benchCase {
	c := benchCase{Transport: name, Mode: mode}
	open := func() (transport.Transport, error) { return builtin.Transports[name](nil) }
	if mode == "out-of-process" {
		open = func() (transport.Transport, error) {
			return transportplugin.Launch(pluginkit.Launcher{
				Path: cfg.self, Args: []string{"plugin", "serve", builtin.KindTransport, name}, Name: name,
			}, nil)
		}
	}
	fmt.Fprintf(os.Stderr, "bench: %s %s: %d frames ...\n", name, mode, cfg.frames)
	from, err := open()
	if err != nil {
		c.Error = err.Error()
		return c
	}
	defer from.Close()
	to, err := open()
	if err != nil {
		c.Error = err.Error()
		return c
	}
	defer to.Close()
	r, err := measureFrames(from, to, cfg.frames, cfg.window, cfg.limit)
	if err != nil {
		c.Error = err.Error()
		return c
	}
	c.Sent, c.Received, c.Capped = r.sent, r.received, r.capped
	c.Seconds = r.elapsed.Seconds()
	if c.Seconds > 0 {
		c.FramesPerSec = float64(r.received) / c.Seconds
		c.MbitPerSec = c.FramesPerSec * transport.MaxDatagram * 8 / 1e6
	}
	if r.sent > 0 {
		c.LossPct = 100 * float64(r.sent-r.received) / float64(r.sent)
	}
	fmt.Fprintf(os.Stderr, "bench: %s %s: %d/%d frames in %.2fs\n", name, mode, r.received, r.sent, c.Seconds)
	return c
}

type frameCount struct {
	sent, received int64
	elapsed        time.Duration // first write to last frame received
	capped         bool
}

var errNoSession = errors.New("no frame arrived within 5s of warm-up (is loopback usable?)")

// measureFrames binds from and to on 127.0.0.1, brings the path up with
// warm-up frames, then sends up to frames full-size frames from → to
// within limit. It does not close the transports.
func measureFrames(from, to transport.Transport, frames, window int, limit time.Duration) (frameCount, error) {
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	if _, err := from.Listen(lo); err != nil {
		return frameCount{}, fmt.Errorf("sender: %w", err)
	}
	dst, err := to.Listen(lo)
	if err != nil {
		return frameCount{}, fmt.Errorf("receiver: %w", err)
	}

	// The receiver counts measured frames and when the last one came.
	var warm, got, lastAt atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		pkts := make([]transport.Packet, transport.BatchSize)
		for i := range pkts {
			pkts[i].Buf = make([]byte, transport.MaxDatagram)
		}
		for {
			n, err := to.ReadBatch(pkts)
			if err != nil {
				return
			}
			m := int64(0)
			for _, p := range pkts[:n] {
				if p.N > 0 && p.Buf[0] == measuredFrame {
					m++
				}
			}
			if m > 0 {
				got.Add(m)
				lastAt.Store(time.Now().UnixNano())
			}
			warm.Add(int64(n) - m)
		}
	}()
	defer func() { to.Close(); <-done }()

	batch := make([]transport.Packet, transport.BatchSize)
	for i := range batch {
		batch[i] = transport.Packet{Addr: dst, Buf: make([]byte, transport.MaxDatagram), N: transport.MaxDatagram}
	}
	// Warm-up: DTLS handshakes and KCP sessions start on the first write.
	for deadline := time.Now().Add(5 * time.Second); warm.Load() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			return frameCount{}, errNoSession
		}
		if err := from.WriteBatch(batch[:1]); err != nil {
			return frameCount{}, fmt.Errorf("warm-up write: %w", err)
		}
	}
	for i := range batch {
		batch[i].Buf[0] = measuredFrame
	}

	var r frameCount
	var lost int64
	start := time.Now()
	end := start.Add(limit)
	progress, progressAt := int64(0), start
	for r.sent < int64(frames) {
		now := time.Now()
		if now.After(end) {
			r.capped = true
			break
		}
		g := got.Load()
		if g != progress {
			progress, progressAt = g, now
		}
		if r.sent-lost-g > int64(window) {
			if now.Sub(progressAt) > stallAfter {
				lost = r.sent - g // written off: free the window
			} else {
				runtime.Gosched()
			}
			continue
		}
		k := min(len(batch), frames-int(r.sent))
		if err := from.WriteBatch(batch[:k]); err != nil {
			return r, fmt.Errorf("write: %w", err)
		}
		r.sent += int64(k)
	}
	// Drain: wait until everything arrived or nothing has for stallAfter.
	for last, lastAtDrain := int64(-1), time.Now(); got.Load() < r.sent; time.Sleep(5 * time.Millisecond) {
		if g := got.Load(); g != last {
			last, lastAtDrain = g, time.Now()
		} else if time.Since(lastAtDrain) > stallAfter {
			break
		}
	}
	r.received = got.Load()
	if at := lastAt.Load(); at > 0 {
		r.elapsed = time.Unix(0, at).Sub(start)
	}
	return r, nil
}
