// Package transportbench measures how fast a transport moves full-size
// link frames over loopback, in process and as the child process a node
// really runs, with the same sender window: `tarzan bench transports` and
// cmd/tarzan's benchmarks use it.
package transportbench

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"sync/atomic"
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

// stallAfter is how long a frame may take before it is written off.
const stallAfter = 100 * time.Millisecond

// DefaultWindow is the kcp transport's per-peer queue: a larger window
// overflows that queue, and the kcp rows would measure its drops, not its
// speed. Every transport gets the same window.
const DefaultWindow = 1024

// Frame markers: warm-up frames (which bring DTLS and KCP sessions up) are
// not counted, so they must be told apart from measured ones.
const (
	warmupFrame   = 0
	measuredFrame = 1
)

// Config is one run's settings.
type Config struct {
	Frames int
	Window int
	Limit  time.Duration // per case
	Self   string        // executable serving `plugin serve transport NAME`
	Runs   int           // rounds of both modes in turn (RunAll); 0 means 1
}

// Case is one row of the report.
type Case struct {
	Transport    string  `json:"transport"`
	Mode         string  `json:"mode"` // "in-process" or "out-of-process"
	Sent         int64   `json:"sent"`
	Received     int64   `json:"received"`
	Seconds      float64 `json:"seconds"`
	FramesPerSec float64 `json:"frames_per_sec"`
	MbitPerSec   float64 `json:"mbit_per_sec"`
	LossPct      float64 `json:"loss_pct"`
	CPUSeconds   float64 `json:"cpu_seconds"`            // user+system of this process and the plugin children
	CPUPerFrame  float64 `json:"cpu_us_per_frame"`       // CPU microseconds per received frame
	Capped       bool    `json:"capped,omitempty"`       // stopped by the time cap
	OutInRatio   float64 `json:"out_in_ratio,omitempty"` // out-of-process rows: frames/s ÷ in-process frames/s
	Error        string  `json:"error,omitempty"`        // the case could not run

	// With more than one round (RunAll): every run's figures, in order,
	// and each round's out ÷ in ratio. The row's other fields are the
	// run with the median frames/s; CPUPerFrame is the median of the runs'.
	RunsFramesPerSec []float64 `json:"runs_frames_per_sec,omitempty"`
	RunsCPUPerFrame  []float64 `json:"runs_cpu_us_per_frame,omitempty"`
	OutInRatios      []float64 `json:"out_in_ratios,omitempty"`
}

// Report is `tarzan bench transports -json`.
type Report struct {
	FrameBytes int     `json:"frame_bytes"`
	Frames     int     `json:"frames_per_case"`
	Window     int     `json:"window"`
	CapSeconds float64 `json:"cap_seconds"`
	GOMAXPROCS int     `json:"gomaxprocs"`
	Runs       int     `json:"runs"`
	Cases      []Case  `json:"cases"`
}

// Run runs one case (mode "in-process" or "out-of-process") and never
// fails: errors go in the row.
func Run(name, mode string, cfg Config) Case {
	c := Case{Transport: name, Mode: mode}
	open := func() (transport.Transport, error) { return builtin.Transports[name](nil) }
	if mode == "out-of-process" {
		open = func() (transport.Transport, error) {
			return transportplugin.Launch(pluginkit.Launcher{
				Path: cfg.Self, Args: host.ServeArgs(builtin.KindTransport, name), Name: name,
			}, nil)
		}
	}
	fmt.Fprintf(os.Stderr, "bench: %s %s: %d frames ...\n", name, mode, cfg.Frames)
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
	r, err := Measure(from, to, cfg.Frames, cfg.Window, cfg.Limit)
	if err != nil {
		c.Error = err.Error()
		return c
	}
	c.Sent, c.Received, c.Capped = r.Sent, r.Received, r.Capped
	c.Seconds = r.Elapsed.Seconds()
	if c.Seconds > 0 {
		c.FramesPerSec = float64(r.Received) / c.Seconds
		c.MbitPerSec = c.FramesPerSec * transport.MaxDatagram * 8 / 1e6
	}
	c.CPUSeconds = r.CPU.Seconds()
	if r.Received > 0 {
		c.CPUPerFrame = float64(r.CPU.Microseconds()) / float64(r.Received)
	}
	if r.Sent > 0 {
		c.LossPct = 100 * float64(r.Sent-r.Received) / float64(r.Sent)
	}
	fmt.Fprintf(os.Stderr, "bench: %s %s: %d/%d frames in %.2fs\n", name, mode, r.Received, r.Sent, c.Seconds)
	return c
}

// Count is what Measure saw.
type Count struct {
	Sent, Received int64
	Elapsed        time.Duration // first write to last frame received
	Capped         bool
	CPU            time.Duration // user+system of every process involved, start to end of the drain
}

var errNoSession = errors.New("no frame arrived within 5s of warm-up (is loopback usable?)")

// Measure binds from and to on 127.0.0.1, brings the path up with
// warm-up frames, then sends up to frames full-size frames from → to
// within limit. It does not close the transports.
func Measure(from, to transport.Transport, frames, window int, limit time.Duration) (Count, error) {
	lo := netip.MustParseAddrPort("127.0.0.1:0")
	if _, err := from.Listen(lo); err != nil {
		return Count{}, fmt.Errorf("sender: %w", err)
	}
	dst, err := to.Listen(lo)
	if err != nil {
		return Count{}, fmt.Errorf("receiver: %w", err)
	}

	// The receiver counts measured frames and when the last one came.
	var warm, got, lastAt atomic.Int64
	done := make(chan struct{})
	// moved wakes a sender waiting for the window to open: the sender
	// blocks instead of spinning, which on a small machine would take
	// the CPU the transports need.
	moved := make(chan struct{}, 1)
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
				select {
				case moved <- struct{}{}:
				default:
				}
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
			return Count{}, errNoSession
		}
		if err := from.WriteBatch(batch[:1]); err != nil {
			return Count{}, fmt.Errorf("warm-up write: %w", err)
		}
	}
	for i := range batch {
		batch[i].Buf[0] = measuredFrame
	}

	var r Count
	var lost int64
	cpu := newCPUMeter(from, to)
	cpu0 := cpu.read()
	stall := time.NewTimer(stallAfter)
	defer stall.Stop()
	start := time.Now()
	end := start.Add(limit)
	progress, progressAt := int64(0), start
	for r.Sent < int64(frames) {
		now := time.Now()
		if now.After(end) {
			r.Capped = true
			break
		}
		g := got.Load()
		if g != progress {
			progress, progressAt = g, now
		}
		if r.Sent-lost-g > int64(window) {
			if now.Sub(progressAt) > stallAfter {
				lost = r.Sent - g // written off: free the window
				progressAt = now  // and give the next window its own time
				continue
			}
			stall.Reset(stallAfter - now.Sub(progressAt))
			select {
			case <-moved:
			case <-stall.C:
			}
			continue
		}
		k := min(len(batch), frames-int(r.Sent))
		if err := from.WriteBatch(batch[:k]); err != nil {
			return r, fmt.Errorf("write: %w", err)
		}
		r.Sent += int64(k)
	}
	// Drain: wait until everything arrived or nothing has for stallAfter.
	for last, lastAtDrain := int64(-1), time.Now(); got.Load() < r.Sent; time.Sleep(5 * time.Millisecond) {
		if g := got.Load(); g != last {
			last, lastAtDrain = g, time.Now()
		} else if time.Since(lastAtDrain) > stallAfter {
			break
		}
	}
	r.CPU = cpu.read() - cpu0
	r.Received = got.Load()
	if at := lastAt.Load(); at > 0 {
		r.Elapsed = time.Unix(0, at).Sub(start)
	}
	return r, nil
}
