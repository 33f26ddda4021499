// Command benchflows measures the IP service's flow figures on a local
// loopback network of real `tarzan node` processes (host/localnet, the
// demo's network): N concurrent curl --socks5-hostname fetches of one file
// through the client's SOCKS5 port (one isolation group, so one tunnel):
// aggregate, mean and slowest flow; the 1 KiB time to first byte (curl's
// time_starttransfer, median); the tunnel setup time (median, from the
// control API). It prints one JSON object. scripts/bench-flows.sh runs it
// against two binaries, interleaved.
//
//	go run ./scripts/benchflows -exe ./tarzan -flows 16 -size 4194304
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/control"
	"github.com/tarzan-net/tarzan/host/localnet"
)

type result struct {
	Exe          string    `json:"exe"`
	Flows        int       `json:"flows"`
	Bytes        int       `json:"bytes_per_flow"`
	AggregateMBs float64   `json:"aggregate_mb_s"`
	MeanMBs      float64   `json:"mean_mb_s"`
	SlowestMBs   float64   `json:"slowest_mb_s"`
	FlowMBs      []float64 `json:"flow_mb_s"`
	Failed       int       `json:"failed"`
	TTFBms       float64   `json:"ttfb_ms_median"`
	TTFBSamples  []float64 `json:"ttfb_ms"`
	ConnectMS    float64   `json:"socks_connected_ms_median"` // curl's time_pretransfer: the SOCKS5 CONNECT answered
	PingMS       float64   `json:"tunnel_rtt_ms"`             // tunnel ping to the last hop (median of 5)
	FirstTTFBms  float64   `json:"first_ttfb_ms"`             // the very first fetch: tunnel ready before it?
	SetupMS      float64   `json:"setup_ms_median"`
	SetupSamples []float64 `json:"setup_ms"`
	CPUSeconds   float64   `json:"cpu_s_flows"` // every node process and plugin child, during the flows
	// UDP receive buffer overflows of the whole host during the flows
	// (other processes' too: read it as an upper bound).
	UDPRcvbufErrors int64             `json:"udp_rcvbuf_errors_host"`
	Counters        map[string]uint64 `json:"drop_counters_all_nodes,omitempty"`
}

func main() {
	exe := flag.String("exe", "", "tarzan binary")
	nodes := flag.Int("nodes", 12, "nodes")
	flows := flag.Int("flows", 16, "concurrent fetches")
	size := flag.Int("size", 4<<20, "bytes per fetch")
	ttfbN := flag.Int("ttfb", 20, "1 KiB fetches for the time to first byte")
	setups := flag.Int("setups", 10, "tunnels built for the setup time")
	keep := flag.Bool("keep", false, "keep the directory")
	flag.Parse()
	if err := run(*exe, *nodes, *flows, *size, *ttfbN, *setups, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "benchflows:", err)
		os.Exit(1)
	}
}

func run(exe string, nodes, flows, size, ttfbN, setups int, keep bool) error {
	exe, err := filepath.Abs(exe)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	big := make([]byte, size)
	rand.Read(big)
	small := make([]byte, 1024)
	rand.Read(small)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /file", func(w http.ResponseWriter, r *http.Request) { w.Write(big) })
	mux.HandleFunc("GET /small", func(w http.ResponseWriter, r *http.Request) { w.Write(small) })
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	defer srv.Close()
	server := ln.Addr().(*net.TCPAddr).AddrPort()
	ip, err := localnet.NewIPService(server)
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "benchflows-")
	if err != nil {
		return err
	}
	if !keep {
		defer os.RemoveAll(dir)
	} else {
		fmt.Fprintln(os.Stderr, "dir", dir)
	}
	nw, err := localnet.StartLoopback(ctx, dir, exe, nodes, localnet.Loopback{IP: ip}, func(f string, a ...any) {})
	if err != nil {
		return err
	}
	defer nw.Stop()
	res := result{Exe: exe, Flows: flows, Bytes: size}
	base := fmt.Sprintf("http://%s", ip.Alias)
	proxy := ip.SOCKS.String()
	// The very first fetch: does it wait for a tunnel build?
	if t, err := curlTTFB(ctx, proxy, base+"/small"); err == nil {
		res.FirstTTFBms = t
	} else {
		return fmt.Errorf("first fetch: %w", err)
	}
	for range ttfbN {
		t, err := curlTTFB(ctx, proxy, base+"/small")
		if err != nil {
			return err
		}
		res.TTFBSamples = append(res.TTFBSamples, t)
	}
	res.TTFBms = median(res.TTFBSamples)
	res.ConnectMS = median(pretransfer[1:])
	if rep, err := nw.Nodes[0].Client.Tunnel(ctx, control.TunnelRequest{Hops: 3, Pings: 5}); err == nil {
		res.PingMS = rep.Hops[len(rep.Hops)-1].RTTMS
	}
	for range setups {
		rep, err := nw.Nodes[0].Client.Tunnel(ctx, control.TunnelRequest{Hops: 3, Pings: 1})
		if err != nil {
			return fmt.Errorf("tunnel: %w", err)
		}
		res.SetupSamples = append(res.SetupSamples, rep.SetupMS)
	}
	res.SetupMS = median(res.SetupSamples)
	cpu0, udp0 := cpuOf(nw.PIDs()), udpErrors()
	var wg sync.WaitGroup
	rates := make([]float64, flows)
	start := time.Now()
	for i := range flows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := exec.CommandContext(ctx, "curl", "-s", "-o", "/dev/null", "--max-time", "120",
				"--socks5-hostname", proxy, "-w", "%{size_download} %{time_total}", base+"/file").Output()
			if err != nil {
				return
			}
			f := strings.Fields(string(out))
			n, _ := strconv.ParseFloat(f[0], 64)
			t, _ := strconv.ParseFloat(f[1], 64)
			if int(n) == size {
				rates[i] = n / t / 1e6
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start).Seconds()
	res.CPUSeconds = cpuOf(nw.PIDs()) - cpu0
	res.UDPRcvbufErrors = udpErrors() - udp0
	var sum float64
	for _, r := range rates {
		if r == 0 {
			res.Failed++
		}
		sum += r
	}
	res.FlowMBs = rates
	res.AggregateMBs = float64(size*(flows-res.Failed)) / wall / 1e6
	res.MeanMBs = sum / float64(flows)
	res.SlowestMBs = slices.Min(rates)
	res.Counters = map[string]uint64{}
	for _, n := range nw.Nodes {
		if st, err := n.Client.Status(ctx); err == nil {
			for k, v := range st.Counters {
				if v != 0 && (strings.HasPrefix(k, "drop") || strings.Contains(k, "reset") || strings.Contains(k, "waited")) {
					res.Counters[k] += v
				}
			}
		}
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// curlTTFB is curl's time to first byte in ms; it also notes, in
// pretransfer, when the SOCKS5 CONNECT was answered (the tunnelled TCP
// handshake done).
func curlTTFB(ctx context.Context, proxy, url string) (float64, error) {
	out, err := exec.CommandContext(ctx, "curl", "-s", "-o", "/dev/null", "--max-time", "20",
		"--socks5-hostname", proxy, "-w", "%{time_pretransfer} %{time_starttransfer}", url).Output()
	if err != nil {
		return 0, fmt.Errorf("curl %s: %w", url, err)
	}
	f := strings.Fields(string(out))
	pre, _ := strconv.ParseFloat(f[0], 64)
	t, err := strconv.ParseFloat(f[1], 64)
	pretransfer = append(pretransfer, pre*1000)
	return t * 1000, err
}

var pretransfer []float64

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// cpuOf sums utime+stime (seconds) of pids and every descendant.
func cpuOf(pids []int) float64 {
	var total float64
	seen := map[int]bool{}
	var walk func(pid int)
	walk = func(pid int) {
		if seen[pid] {
			return
		}
		seen[pid] = true
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err == nil {
			s := string(b)
			f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
			u, _ := strconv.ParseFloat(f[11], 64)
			st, _ := strconv.ParseFloat(f[12], 64)
			total += (u + st) / 100
		}
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
		for _, t := range tasks {
			kids, _ := os.ReadFile(t)
			for _, k := range strings.Fields(string(kids)) {
				c, _ := strconv.Atoi(k)
				walk(c)
			}
		}
	}
	for _, p := range pids {
		walk(p)
	}
	return total
}

// udpErrors is the host's UDP RcvbufErrors (/proc/net/snmp).
func udpErrors() int64 {
	b, _ := os.ReadFile("/proc/net/snmp")
	var head []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "Udp: ") {
			continue
		}
		f := strings.Fields(l)
		if head == nil {
			head = f
			continue
		}
		for i, h := range head {
			if h == "RcvbufErrors" && i < len(f) {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				return v
			}
		}
	}
	return 0
}
