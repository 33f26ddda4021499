package tunbench

import (
	"encoding/json"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tarzan-net/tarzan/config"
)

// A config as `yggdrasil -genconf -json` (0.4.7) prints it.
const genconf = `{
  "Peers": [],
  "InterfacePeers": {},
  "Listen": [],
  "AdminListen": "unix:///var/run/yggdrasil/yggdrasil.sock",
  "MulticastInterfaces": [{"Regex": ".*", "Beacon": true, "Listen": true, "Port": 0, "Priority": 0}],
  "AllowedPublicKeys": [],
  "PublicKey": "4200255382e39703ea4d814f91db154e5ae436c0af86496ae8abb7d0e4e7a9c8",
  "PrivateKey": "c8df3d91c66453b4a118a7c0b36d5e0e71454db372e79c3d7c7d31f9aebce1384200255382e39703ea4d814f91db154e5ae436c0af86496ae8abb7d0e4e7a9c8",
  "IfName": "auto",
  "IfMTU": 65535,
  "NodeInfoPrivacy": false,
  "NodeInfo": null
}`

func TestYggConfig(t *testing.T) {
	for _, tc := range []struct {
		peers, listen []string
		mtu, wantMTU  int
	}{
		{peers: []string{"tcp://10.77.0.2:12345"}, wantMTU: 65535},
		{listen: []string{"tcp://10.77.0.2:12345"}, mtu: 1280, wantMTU: 1280},
	} {
		b, err := yggConfig([]byte(genconf), tc.peers, tc.listen, "tzbygg0", tc.mtu)
		if err != nil {
			t.Fatal(err)
		}
		var c struct {
			Peers, Listen       []string
			MulticastInterfaces []any
			AdminListen, IfName string
			IfMTU               int
			PrivateKey          string
		}
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatalf("%v in %s", err, b)
		}
		if !slices.Equal(c.Peers, nonNil(tc.peers)) || !slices.Equal(c.Listen, nonNil(tc.listen)) {
			t.Errorf("peers %v listen %v, want %v %v", c.Peers, c.Listen, tc.peers, tc.listen)
		}
		if len(c.MulticastInterfaces) != 0 || c.AdminListen != "none" || c.IfName != "tzbygg0" || c.IfMTU != tc.wantMTU {
			t.Errorf("multicast %v admin %q ifname %q mtu %d, want none, none, tzbygg0, %d", c.MulticastInterfaces, c.AdminListen, c.IfName, c.IfMTU, tc.wantMTU)
		}
		if !strings.HasPrefix(c.PrivateKey, "c8df3d91") {
			t.Error("the generated key was not kept")
		}
		// JSON null for no peers would make yggdrasil fail; [] is right.
		if !strings.Contains(string(b), `"Peers": [`) {
			t.Errorf("peers not a list: %s", b)
		}
	}
	if _, err := yggConfig([]byte("{}"), nil, nil, "x", 0); err == nil || !strings.Contains(err.Error(), "PrivateKey") {
		t.Errorf("config without keys: err %v, want one naming PrivateKey", err)
	}
	if _, err := yggConfig([]byte("not json"), nil, nil, "x", 0); err == nil {
		t.Error("bad genconf output accepted")
	}
}

func TestTarzanConfigs(t *testing.T) {
	addrs := []netip.AddrPort{netip.MustParseAddrPort("10.1.0.1:7700"), netip.MustParseAddrPort("10.2.0.1:7700"),
		netip.MustParseAddrPort("10.100.0.1:7700")}
	cfgs := tzConfigs(addrs, "/tmp/state", true)
	if len(cfgs) != 3 {
		t.Fatalf("%d configs, want 3", len(cfgs))
	}
	dir := t.TempDir()
	for i, cfg := range cfgs {
		cfg.Node.Identity = "identity.key"
		path := filepath.Join(dir, "node.toml")
		if err := config.Write(path, cfg); err != nil {
			t.Fatal(err)
		}
		back, err := config.Load(path)
		if err != nil {
			t.Fatalf("config %d does not load: %v", i, err)
		}
		client := i == len(cfgs)-1
		if back.Node.Exit == client {
			t.Errorf("config %d: exit %v, want %v", i, back.Node.Exit, !client)
		}
		if client && (back.Adapter.Name != "tun" || back.Adapter.Options["name"] != tzTunDev) {
			t.Errorf("client adapter %q %v, want tun named %s", back.Adapter.Name, back.Adapter.Options, tzTunDev)
		}
		if back.Cover.Name != "none" || !back.Transport.InProcess || back.Transport.Listen != addrs[i] {
			t.Errorf("config %d: cover %q, transport in process %v at %v", i, back.Cover.Name, back.Transport.InProcess, back.Transport.Listen)
		}
		if got := back.Discovery.Options["peers"]; strings.Count(got, ",") != 2 {
			t.Errorf("config %d: peers %q, want all 3", i, got)
		}
		if !slices.Equal(back.Exit.Policy, []string{"accept " + tzServerNet, "reject *:*"}) {
			t.Errorf("config %d: exit policy %v", i, back.Exit.Policy)
		}
	}
}

func TestParseIperf(t *testing.T) {
	tcp := `{"start":{},"end":{"sum_sent":{"bytes":2000,"bits_per_second":9e8},"sum_received":{"bytes":1000000000,"bits_per_second":8e8}}}`
	r, err := parseIperf([]byte(tcp), false)
	if err != nil || r.Bytes != 1e9 || r.BitsPerSec != 8e8 {
		t.Errorf("tcp: %+v %v", r, err)
	}
	udp := `{"end":{"sum":{"bytes":5368800,"bits_per_second":2e7,"lost_percent":28.7},"sum_received":{"bytes":3822000,"bits_per_second":1e7,"lost_percent":28.7}}}`
	r, err = parseIperf([]byte(udp), true)
	if err != nil || r.Bytes != 3822000 || r.LostPercent != 28.7 || r.BitsPerSec != 1e7 {
		t.Errorf("udp: %+v %v", r, err)
	}
	if _, err := parseIperf([]byte(`{"error":"unable to connect to server: Connection refused"}`), false); err == nil || !strings.Contains(err.Error(), "Connection refused") {
		t.Errorf("iperf3's error: %v", err)
	}
	if _, err := parseIperf(nil, false); err == nil {
		t.Error("no output accepted")
	}
	if _, err := parseIperf([]byte(`{"end":{}}`), false); err == nil {
		t.Error("a report without sum_received accepted")
	}
}

func TestParsePing(t *testing.T) {
	out := `PING 172.31.0.1 (172.31.0.1) 56(84) bytes of data.
64 bytes from 172.31.0.1: icmp_seq=1 ttl=64 time=5.62 ms
64 bytes from 172.31.0.1: icmp_seq=2 ttl=64 time=1.10 ms
64 bytes from 172.31.0.1: icmp_seq=3 ttl=64 time=0.091 ms

--- 172.31.0.1 ping statistics ---
3 packets transmitted, 3 received, 0% packet loss, time 2003ms
rtt min/avg/max/mdev = 0.091/2.270/5.620/2.400 ms`
	got := parsePing([]byte(out))
	if !slices.Equal(got, []float64{5.62, 1.10, 0.091}) || median(got) != 1.10 {
		t.Errorf("rtts %v, median %v", got, median(got))
	}
}

func TestParseStatAndTree(t *testing.T) {
	// The command name may hold spaces and parentheses.
	st, ok := parseStat("123 (tarzan (x) y) S 1 123 123 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 0 0")
	if !ok || st.ppid != 1 || st.ticks != 300 {
		t.Errorf("parseStat: %+v %v", st, ok)
	}
	if _, ok := parseStat("garbage"); ok {
		t.Error("garbage parsed")
	}
	stats := map[int]procStat{
		10: {ppid: 1, ticks: 100}, 11: {ppid: 10, ticks: 20}, 12: {ppid: 11, ticks: 3}, // a node, its plugin, a grandchild
		20: {ppid: 1, ticks: 1000}, // not ours
		30: {ppid: 1, ticks: 7},
	}
	if ticks, n := treeTicks(stats, []int{10, 30, 99}); ticks != 130 || n != 4 {
		t.Errorf("treeTicks = %d over %d processes, want 130 over 4", ticks, n)
	}
	if s, n := cpuSeconds([]int{os.Getpid()}); n < 1 || s < 0 {
		t.Errorf("own CPU %v over %d processes", s, n)
	}
}

func TestTable(t *testing.T) {
	cfg := Config{}
	cfg.Defaults()
	ovs := []overlay{tarzanOverlay{}, yggOverlay{}, yggOverlay{mtu: 1280}}
	samples := map[string][]sample{
		"tarzan":            {{tcpMbit: 100, cpuPerGB: 140}, {tcpMbit: 120}, {tcpMbit: 110}},
		"yggdrasil":         {{tcpMbit: 1000}, {tcpMbit: 1100}},
		"yggdrasil-mtu1280": {{tcpMbit: 106}},
	}
	tab := table(tableHead(cfg), cfg, ovs, samples)
	if len(tab.Metrics) != 10 {
		t.Fatalf("%d metrics, want 5 per baseline", len(tab.Metrics))
	}
	m := tab.Metrics[0]
	if m.Base != "yggdrasil" || m.TestMedian() != 110 || m.BaseMedian() != 1050 || math.Abs(m.Ratio()-110.0/1050) > 1e-9 || m.Target == "" {
		t.Errorf("first metric %+v", m)
	}
	if tab.Metrics[5].Base != "yggdrasil-mtu1280" || tab.Metrics[5].BaseMedian() != 106 {
		t.Errorf("sixth metric %+v", tab.Metrics[5])
	}
	samples["tarzan-base"] = []sample{{tcpMbit: 50}}
	ab := table(tableHead(cfg), cfg, []overlay{tarzanOverlay{}, tarzanOverlay{label: "tarzan-base"}}, samples)
	if len(ab.Metrics) != 5 || ab.Metrics[0].Base != "tarzan-base" || ab.Metrics[0].Ratio() != 110.0/50 {
		t.Errorf("two builds: %+v", ab.Metrics[0])
	}
	alone := table(tableHead(cfg), cfg, ovs[:1], samples)
	if len(alone.Metrics) != 5 || alone.Metrics[0].Base != BaselineNone || !strings.Contains(strings.Join(alone.Notes, " "), "Tarzan alone") {
		t.Errorf("Tarzan alone: %+v", alone)
	}
}

// TestTCPOptions: -R and -P reach iperf3 and the table says so; every
// overlay gets the same options (one tcpOpts per comparison).
func TestTCPOptions(t *testing.T) {
	if a := (tcpOpts{}).args(); len(a) != 0 {
		t.Errorf("defaults give %v", a)
	}
	if a := strings.Join(tcpOpts{reverse: true, streams: 4}.args(), " "); a != "-R -P 4" {
		t.Errorf("-R -P 4 give %q", a)
	}
	cfg := Config{Reverse: true, Streams: 4}
	cfg.Defaults()
	tab := table(tableHead(cfg), cfg, []overlay{tarzanOverlay{}}, map[string][]sample{"tarzan": {{tcpMbit: 1}}})
	if name := tab.Metrics[0].Name; !strings.Contains(name, "-R -P 4") {
		t.Errorf("TCP row %q does not name the options", name)
	}
	if notes := strings.Join(tab.Notes, " "); !strings.Contains(notes, "the server sends, 4 parallel streams") {
		t.Errorf("notes do not say who sends: %s", notes)
	}
}

// TestNetnsPrefix: a bad prefix is refused before anything is created.
func TestNetnsPrefix(t *testing.T) {
	for _, p := range []string{"-x", "a/b", "1ab", "toolongprefix"} {
		_, err := Run(t.Context(), Config{NetnsPrefix: p, Baseline: BaselineNone, Binary: "/bin/true"})
		if err == nil || !strings.Contains(err.Error(), "namespace prefix") {
			t.Errorf("prefix %q: %v", p, err)
		}
	}
	if !prefixRE.MatchString("tun18") || !prefixRE.MatchString(NamePrefix) {
		t.Error("tun18 and the default prefix are refused")
	}
}
