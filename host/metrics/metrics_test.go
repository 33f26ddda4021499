package metrics

import (
	"bufio"
	"bytes"
	"context"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/node/nodetest"
)

// sample is one line of the text exposition: name, labels, value.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

var labelRE = regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`)

func scrape(t *testing.T, src Source) []sample {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler(src).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	var out []sample
	sc := bufio.NewScanner(bytes.NewReader(rec.Body.Bytes()))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		s := sample{name: line[:sp], labels: map[string]string{}, value: v}
		if i := strings.IndexByte(line[:sp], '{'); i >= 0 {
			s.name = line[:i]
			for _, m := range labelRE.FindAllStringSubmatch(line[i:sp], -1) {
				s.labels[m[1]] = m[2]
			}
		}
		out = append(out, s)
	}
	return out
}

func value(ss []sample, name string, labels ...string) float64 {
next:
	for _, s := range ss {
		if s.name != name {
			continue
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if s.labels[labels[i]] != labels[i+1] {
				continue next
			}
		}
		return s.value
	}
	return -1
}

// A scrape during a transfer shows the bytes on the link to the tunnel's
// first hop, the build in the latency histogram, and no label anywhere
// that is an address or a full node ID.
func TestScrapeDuringTransfer(t *testing.T) { synctest.Test(t, testScrapeDuringTransfer) }

func testScrapeDuringTransfer(t *testing.T) {
	tn := nodetest.Start(t, nodetest.Config{Nodes: 6, K: 2})
	src := tn.Nodes[0]
	ms := Source{Node: src, Started: time.Now(), Plugins: func() []Plugin {
		return []Plugin{{Kind: "discovery", Name: "gossip", Counters: map[string]uint64{"gossip_sent": 3}}}
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tun, err := src.BuildTunnel(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	first := tun.HopIDs()[0].Short()
	before := scrape(t, ms)
	const cells = 400
	pkt := make([]byte, 1000)
	for i := 0; i < cells; i++ {
		if err := tun.SendData(pkt); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			time.Sleep(time.Millisecond) // let the link writer drain
		}
	}
	time.Sleep(100 * time.Millisecond)
	synctest.Wait()
	after := scrape(t, ms)

	grew := func(peer, dir string) float64 {
		return value(after, "tarzan_link_bytes_total", "peer", peer, "direction", dir) -
			value(before, "tarzan_link_bytes_total", "peer", peer, "direction", dir)
	}
	if g := grew(first, "tx"); g < cells*1408 {
		t.Errorf("link to the first hop %s: %v bytes sent during the transfer, want at least %d", first, g, cells*1408)
	}
	for _, l := range src.LinkStats() {
		if p := l.Peer.Short(); p != first {
			if g := grew(p, "tx"); g >= cells*1408 {
				t.Errorf("link to %s, not on the tunnel, sent %v bytes during the transfer", p, g)
			}
		}
	}
	if v := value(after, "tarzan_tunnel_build_seconds_count", "result", "built"); v < 1 {
		t.Errorf("tunnel_build_seconds_count{result=built} = %v, want >= 1", v)
	}
	// The tunnel's own bytes: in its slot and in the node's sums.
	if v := value(after, "tarzan_open_tunnel_data_bytes_total", "slot", "0", "direction", "tx"); v != cells*1000 {
		t.Errorf("open_tunnel_data_bytes_total{slot=0,direction=tx} = %v, want %d", v, cells*1000)
	}
	if v := value(after, "tarzan_tunnel_data_bytes_total", "direction", "tx"); v != cells*1000 {
		t.Errorf("tunnel_data_bytes_total{direction=tx} = %v, want %d", v, cells*1000)
	}
	if v := value(after, "tarzan_open_tunnel_age_seconds", "slot", "0"); v <= 0 {
		t.Errorf("open_tunnel_age_seconds{slot=0} = %v, want > 0", v)
	}
	if v := value(after, "tarzan_plugin_counter_total", "kind", "discovery", "counter", "gossip_sent"); v != 3 {
		t.Errorf("plugin counter gossip_sent = %v, want 3", v)
	}
	// At the first hop, the same bytes arrived on its link from us.
	hop := tn.ByID(tun.HopIDs()[0])
	hs := scrape(t, Source{Node: hop})
	if v := value(hs, "tarzan_link_bytes_total", "peer", src.ID().Short(), "direction", "rx"); v < cells*1408 {
		t.Errorf("first hop: %v bytes received from us, want at least %d", v, cells*1408)
	}
	t.Logf("first hop %s: %v bytes sent during the transfer; built %v", first, grew(first, "tx"), value(after, "tarzan_tunnel_build_seconds_count", "result", "built"))
	checkLabels(t, after, tn)
	checkLabels(t, hs, tn)
}

// checkLabels fails on any label value that is an IP address (with or
// without a port), or holds a node's full ID or address.
func checkLabels(t *testing.T, ss []sample, tn *nodetest.Net) {
	t.Helper()
	var secrets []string
	for i, n := range tn.Nodes {
		secrets = append(secrets, n.ID().String(), nodetest.AddrOf(i).Addr().String())
	}
	hexID := regexp.MustCompile(`[0-9a-f]{32,}`)
	for _, s := range ss {
		for k, v := range s.labels {
			if _, err := netip.ParseAddr(v); err == nil {
				t.Errorf("%s: label %s=%q is an IP address", s.name, k, v)
			}
			if _, err := netip.ParseAddrPort(v); err == nil {
				t.Errorf("%s: label %s=%q is an address:port", s.name, k, v)
			}
			if hexID.MatchString(v) {
				t.Errorf("%s: label %s=%q holds a long hex string (a full ID?)", s.name, k, v)
			}
			for _, sec := range secrets {
				if strings.Contains(v, sec) {
					t.Errorf("%s: label %s=%q holds %q", s.name, k, v, sec)
				}
			}
		}
	}
}
