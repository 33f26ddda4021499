package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/host/transportbench"
	"github.com/tarzan-net/tarzan/plugins/transport/udp"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
	"github.com/tarzan-net/tarzan/sdk/transport"
	"github.com/tarzan-net/tarzan/sdk/transport/transportplugin"
)

// Frames/s through the shipped UDP transport, in process and as the child
// process a node really runs (`tarzan plugin serve transport udp`), with the
// same sender window, so the two can be compared: the design target is
// out of process ≥ 80 % of in process. `tarzan bench transports` runs the
// same harness (transportbench.Measure) for every shipped transport.

func BenchmarkUDPTransportInProcess(b *testing.B) {
	a, err := udp.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	c, err := udp.New(nil)
	if err != nil {
		b.Fatal(err)
	}
	benchFrames(b, a, c)
}

func BenchmarkUDPTransportOutOfProcess(b *testing.B) {
	launch := func() transport.Transport {
		t, err := transportplugin.Launch(pluginkit.Launcher{
			Path: tarzanBin, Args: []string{"plugin", "serve", "transport", "udp"}, Name: "udp",
		}, nil)
		if err != nil {
			b.Fatal(err)
		}
		return t
	}
	benchFrames(b, launch(), launch())
}

// benchFrames sends b.N full-size frames from → to with the bench
// command's window and reports frames/s and loss.
func benchFrames(b *testing.B, from, to transport.Transport) {
	defer from.Close()
	defer to.Close()
	b.SetBytes(transport.MaxDatagram)
	b.ResetTimer()
	r, err := transportbench.Measure(from, to, b.N, transportbench.DefaultWindow, time.Minute)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if r.Elapsed > 0 {
		b.ReportMetric(float64(r.Received)/r.Elapsed.Seconds(), "frames/s")
	}
	b.ReportMetric(100*(1-float64(r.Received)/float64(b.N)), "loss%")
}

// TestBenchTransports runs the bench command with a few frames: every
// shipped transport in both modes, and the JSON it prints.
func TestBenchTransports(t *testing.T) {
	cmd := exec.Command(tarzanBin, "bench", "transports", "-json", "-frames", "3000", "-max", "5s", "-transports", "udp,dtls,kcp")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench transports: %v\n%s", err, out)
	}
	var rep transportbench.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("bench transports -json: %v\n%s", err, out)
	}
	if rep.FrameBytes != transport.MaxDatagram || rep.Frames != 3000 || len(rep.Cases) != 6 {
		t.Fatalf("report: %+v", rep)
	}
	for i, c := range rep.Cases {
		wantMode := []string{"in-process", "out-of-process"}[i%2]
		if c.Error != "" || c.Mode != wantMode || c.Sent != 3000 || c.Received <= 0 || c.FramesPerSec <= 0 || c.MbitPerSec <= 0 {
			t.Errorf("case %d: %+v", i, c)
		}
		if wantMode == "out-of-process" && c.OutInRatio <= 0 {
			t.Errorf("case %d has no out/in ratio: %+v", i, c)
		}
	}
}

func TestBenchRejectsUnknownTransport(t *testing.T) {
	out, err := exec.Command(tarzanBin, "bench", "transports", "-transports", "carrier-pigeon").CombinedOutput()
	if exitCode(err) != 1 || !containsAll(string(out), "carrier-pigeon", "not shipped") {
		t.Fatalf("bench with an unknown transport: %v\n%s", err, out)
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
