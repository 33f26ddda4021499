package transportbench

import (
	"cmp"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tarzan-net/tarzan/host"
	"github.com/tarzan-net/tarzan/plugins/builtin"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// Names turns a comma-separated list of shipped transports into names,
// refusing one the binary does not ship.
func Names(list string) ([]string, error) {
	var names []string
	for _, n := range strings.Split(list, ",") {
		if n = strings.TrimSpace(n); n == "" {
			continue
		}
		if _, ok := builtin.Transports[n]; !ok {
			return nil, host.UnknownPlugin(builtin.KindTransport, n)
		}
		names = append(names, n)
	}
	return names, nil
}

// RunAll runs every named transport in process and out of process,
// cfg.Runs rounds of the two in turn (in, out, in, out, ...), so that a
// drift in the machine's load reaches both modes alike. Each row is the
// run with the median frames/s of its mode, with every run's frames/s in
// RunsFramesPerSec; an out-of-process row's ratio is the median of the
// rounds' own out ÷ in ratios (each pair measured back to back).
func RunAll(names []string, cfg Config) Report {
	runs := max(cfg.Runs, 1)
	rep := Report{FrameBytes: transport.MaxDatagram, Frames: cfg.Frames, Window: cfg.Window,
		CapSeconds: cfg.Limit.Seconds(), GOMAXPROCS: runtime.GOMAXPROCS(0), Runs: runs}
	for _, name := range names {
		var ins, outs []Case
		var ratios []float64
		for range runs {
			in := Run(name, "in-process", cfg)
			out := Run(name, "out-of-process", cfg)
			ins, outs = append(ins, in), append(outs, out)
			if in.Error == "" && out.Error == "" && in.FramesPerSec > 0 {
				ratios = append(ratios, out.FramesPerSec/in.FramesPerSec)
			}
		}
		in, out := medianCase(ins), medianCase(outs)
		if len(ratios) > 0 && out.Error == "" {
			out.OutInRatio = median(ratios)
			if runs > 1 {
				out.OutInRatios = ratios
			}
		}
		rep.Cases = append(rep.Cases, in, out)
	}
	return rep
}

// medianCase returns the run with the median frames/s (the first error,
// if any run failed) and, for more than one run, every run's frames/s.
func medianCase(cs []Case) Case {
	for _, c := range cs {
		if c.Error != "" {
			return c
		}
	}
	sorted := slices.Clone(cs)
	slices.SortFunc(sorted, func(a, b Case) int { return cmp.Compare(a.FramesPerSec, b.FramesPerSec) })
	m := sorted[(len(sorted)-1)/2]
	if len(cs) > 1 {
		for _, c := range cs {
			m.RunsFramesPerSec = append(m.RunsFramesPerSec, c.FramesPerSec)
			m.RunsCPUPerFrame = append(m.RunsCPUPerFrame, c.CPUPerFrame)
		}
		cpu := slices.Clone(m.RunsCPUPerFrame)
		m.CPUPerFrame = median(cpu)
	}
	return m
}

// median of xs (sorted in place); the lower middle for an even count.
func median(xs []float64) float64 {
	slices.Sort(xs)
	return xs[(len(xs)-1)/2]
}

// WriteText prints the report as `tarzan bench transports` shows it.
func (rep Report) WriteText(out io.Writer) error {
	fmt.Fprintf(out, "%d-byte frames over loopback, %d per case (cap %v), window %d, GOMAXPROCS %d\n",
		rep.FrameBytes, rep.Frames, time.Duration(rep.CapSeconds*float64(time.Second)), rep.Window, rep.GOMAXPROCS)
	if rep.Runs > 1 {
		fmt.Fprintf(out, "medians of %d rounds (in and out of process in turn); OUT/IN is the median of the rounds' own ratios\n", rep.Runs)
	}
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "TRANSPORT\tMODE\tFRAMES/S\tMBIT/S\tLOSS %\tCPU µs/FRAME\tOUT/IN")
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
		fmt.Fprintf(w, "%s\t%s\t%.0f\t%.0f\t%.2f\t%.2f\t%s\n", c.Transport, mode, c.FramesPerSec, c.MbitPerSec, c.LossPct, c.CPUPerFrame, ratio)
	}
	return w.Flush()
}
