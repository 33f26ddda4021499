package transportbench

import (
	"fmt"
	"io"
	"runtime"
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

// RunAll runs every named transport in process and then out of process,
// in that order, and fills in each out-of-process row's ratio to its
// in-process twin.
func RunAll(names []string, cfg Config) Report {
	rep := Report{FrameBytes: transport.MaxDatagram, Frames: cfg.Frames, Window: cfg.Window,
		CapSeconds: cfg.Limit.Seconds(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	for _, name := range names {
		in := Run(name, "in-process", cfg)
		out := Run(name, "out-of-process", cfg)
		if in.FramesPerSec > 0 && out.Error == "" {
			out.OutInRatio = out.FramesPerSec / in.FramesPerSec
		}
		rep.Cases = append(rep.Cases, in, out)
	}
	return rep
}

// WriteText prints the report as `tarzan bench transports` shows it.
func (rep Report) WriteText(out io.Writer) error {
	fmt.Fprintf(out, "%d-byte frames over loopback, %d per case (cap %v), window %d, GOMAXPROCS %d\n",
		rep.FrameBytes, rep.Frames, time.Duration(rep.CapSeconds*float64(time.Second)), rep.Window, rep.GOMAXPROCS)
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
