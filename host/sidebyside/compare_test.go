package sidebyside

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"math"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestTorrc(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	auth := TorNodeConf{Nick: "tzaut00", Role: TorAuthority, Addr: lo, ORPort: 5000, DirPort: 7000, DataDir: "/d/a",
		V3Ident: strings.Repeat("A", 40), Fingerprint: strings.Repeat("B", 40)}
	want := "DirAuthority tzaut00 orport=5000 no-v2 v3ident=" + strings.Repeat("A", 40) + " 127.0.0.1:7000 " + strings.Repeat("B", 40)
	if got := auth.DirAuthorityLine(); got != want {
		t.Errorf("DirAuthorityLine = %q, want %q", got, want)
	}
	cases := []struct {
		n        TorNodeConf
		has, not []string
	}{
		{auth, []string{"AuthoritativeDirectory 1", "V3AuthVotingInterval 60", "DirPort 127.0.0.1:7000", "ORPort 127.0.0.1:5000", "ExitPolicy reject *:*", want},
			[]string{"ExitRelay 1", "SocksPort 127"}},
		{TorNodeConf{Nick: "tzexi03", Role: TorExit, Addr: lo, ORPort: 5003, DataDir: "/d/e"},
			[]string{"ExitRelay 1", "ExitPolicyRejectPrivate 0", "ExitPolicy accept 127.0.0.0/8:*\nExitPolicy reject *:*", "SocksPort 0", want},
			[]string{"AuthoritativeDirectory", "DirPort", "accept *:*"}},
		{TorNodeConf{Nick: "tzrel04", Role: TorRelay, Addr: lo, ORPort: 5004, DataDir: "/d/r"},
			[]string{"ExitRelay 0", "ExitPolicy reject *:*"}, []string{"ExitRelay 1", "accept"}},
		{TorNodeConf{Nick: "tzcli05", Role: TorClient, Addr: lo, SOCKS: 9050, Control: 9051, DataDir: "/d/c"},
			[]string{"SocksPort 127.0.0.1:9050", "ControlPort 127.0.0.1:9051", "CookieAuthentication 1", "UseMicrodescriptors 0", "DataDirectory /d/c"},
			[]string{"ORPort", "ExitRelay"}},
	}
	for _, c := range cases {
		rc := Torrc(c.n, []TorNodeConf{auth}, 60)
		for _, h := range append(c.has, "TestingTorNetwork 1", "RunAsDaemon 0", "Nickname "+c.n.Nick) {
			if !strings.Contains(rc, h) {
				t.Errorf("%s torrc lacks %q:\n%s", c.n.Role, h, rc)
			}
		}
		for _, h := range c.not {
			if strings.Contains(rc, h) {
				t.Errorf("%s torrc has %q:\n%s", c.n.Role, h, rc)
			}
		}
	}
}

func TestTorrcScheduler(t *testing.T) {
	n := TorNodeConf{Nick: "tzexi03", Role: TorExit, Addr: netip.MustParseAddr("127.0.0.1"), ORPort: 5003, DataDir: "/d/e"}
	if rc := Torrc(n, nil, 60, DefaultTorPlan.torrcExtra()...); !strings.Contains(rc, "\nSchedulers Vanilla\n") {
		t.Errorf("default plan's torrc lacks Schedulers Vanilla:\n%s", rc)
	}
	p := DefaultTorPlan
	p.Scheduler, p.Extra = "kist", []string{"KISTSchedRunInterval 2 msec"}
	rc := Torrc(n, nil, 60, p.torrcExtra()...)
	if strings.Contains(rc, "Schedulers") || !strings.Contains(rc, "\nKISTSchedRunInterval 2 msec\n") {
		t.Errorf("kist plan's torrc:\n%s", rc)
	}
	p.Scheduler = "fifo"
	if p.Check() == nil {
		t.Error("scheduler fifo: no error")
	}
}

func TestTorPlan(t *testing.T) {
	roles := DefaultTorPlan.Roles()
	if len(roles) != 12 || roles[0] != TorAuthority || roles[3] != TorExit || roles[11] != TorClient {
		t.Errorf("default roles %v: want 3 authorities, 8 exits, the client (12 like the Tarzan side)", roles)
	}
	if err := DefaultTorPlan.Check(); err != nil {
		t.Error(err)
	}
	for _, p := range []TorPlan{{Authorities: 0, Exits: 3, VotingInterval: 10}, {Authorities: 1, Exits: 0, Relays: 3, VotingInterval: 10},
		{Authorities: 1, Exits: 1, VotingInterval: 10}, {Authorities: 3, Exits: 1, VotingInterval: 7}, {Authorities: 3, Exits: 1}} {
		if p.Check() == nil {
			t.Errorf("%+v: no error", p)
		}
	}
}

func TestParseTorFiles(t *testing.T) {
	cert := "dir-key-certificate-version 3\nfingerprint 4f9c354bf986ac5ae45f75b88aec4e1ac8114684\ndir-key-published 2026-12-06\n"
	if fp, err := ParseCertFingerprint(cert); err != nil || fp != "4F9C354BF986AC5AE45F75B88AEC4E1AC8114684" {
		t.Errorf("ParseCertFingerprint = %q, %v", fp, err)
	}
	if _, err := ParseCertFingerprint("fingerprint 12\n"); err == nil {
		t.Error("short fingerprint accepted")
	}
	for _, in := range []string{"auth0 47BA283AD2DA74FC62DD583D5E0F603CC23F5707\n", "auth0 47BA 283A D2DA 74FC 62DD 583D 5E0F 603C C23F 5707\n"} {
		if fp, err := ParseFingerprintFile(strings.NewReader(in)); err != nil || fp != "47BA283AD2DA74FC62DD583D5E0F603CC23F5707" {
			t.Errorf("ParseFingerprintFile(%q) = %q, %v", in, fp, err)
		}
	}
	if _, err := ParseFingerprintFile(strings.NewReader("auth0 XYZ\n")); err == nil {
		t.Error("bad fingerprint accepted")
	}
	p, s, err := ParseBootstrap(`NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"`)
	if err != nil || p != 100 || s != "Done" {
		t.Errorf("ParseBootstrap = %d %q %v", p, s, err)
	}
	if _, _, err := ParseBootstrap("NOTICE BOOTSTRAP TAG=done"); err == nil {
		t.Error("no PROGRESS accepted")
	}
}

func TestProcStat(t *testing.T) {
	st, err := parseProcStat("1234 (tor (a) b) S 77 1234 1234 0 -1 4194560 500 0 0 0 150 25 0 0 20 0 1 0 100 0 0")
	if err != nil || st.PPID != 77 || st.UTime != 150 || st.STime != 25 {
		t.Errorf("parseProcStat = %+v, %v", st, err)
	}
	if _, err := parseProcStat("1 (x) S 1"); err == nil {
		t.Error("short stat accepted")
	}
	procs := map[int]procStat{1: {PPID: 0}, 10: {PPID: 1}, 11: {PPID: 10}, 12: {PPID: 11}, 20: {PPID: 1}}
	got := tree(procs, []int{10, 99})
	slices.Sort(got)
	if !slices.Equal(got, []int{10, 11, 12}) {
		t.Errorf("tree = %v, want 10 11 12", got)
	}
	before, after := CPUSample{10: 100, 11: 50}, CPUSample{10: 250, 11: 50, 12: 30}
	if s := CPUSeconds(before, after); math.Abs(s-1.8) > 1e-9 {
		t.Errorf("CPUSeconds = %v, want 1.8 (150 + 0 + 30 ticks)", s)
	}
	self, err := SampleCPU([]int{os.Getpid()})
	if err != nil || len(self) == 0 {
		t.Errorf("SampleCPU(self) = %v, %v", self, err)
	}
}

func TestCurlOutput(t *testing.T) {
	f, err := ParseCurlOutput("200 1048576 0.012500 0.250000", 1<<20)
	if err != nil || !f.Complete || f.TTFB != 12500*time.Microsecond || f.Total != 250*time.Millisecond {
		t.Errorf("ParseCurlOutput = %+v, %v", f, err)
	}
	if mb := f.MBps(); math.Abs(mb-4.194304) > 1e-6 {
		t.Errorf("MBps = %v", mb)
	}
	if f, _ := ParseCurlOutput("200 1000 0.1 0.2", 1<<20); f.Complete {
		t.Error("short body complete")
	}
	if f, _ := ParseCurlOutput("502 1024 0.1 0.2", 1024); f.Complete {
		t.Error("HTTP 502 complete")
	}
	if _, err := ParseCurlOutput("curl: (7) failed", 1); err == nil {
		t.Error("garbage parsed")
	}
	for user, want := range map[string]string{
		"":      "curl -sS -o /dev/null --socks5 127.1.0.1:1080 --max-time 40 -w " + curlFormat + " http://198.18.0.1:80/bytes/1024",
		"flow3": "curl -sS -o /dev/null --socks5 127.1.0.1:1080 --proxy-user flow3:x --max-time 40 -w " + curlFormat + " http://198.18.0.1:80/bytes/1024",
	} {
		args := strings.Join(CurlArgs(netip.MustParseAddrPort("127.1.0.1:1080"), user, netip.MustParseAddrPort("198.18.0.1:80"), 1024, 40*time.Second), " ")
		if args != want {
			t.Errorf("CurlArgs = %q, want %q", args, want)
		}
	}
}

func TestBytesServer(t *testing.T) {
	s, err := StartBytesServer()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, n := range []int{0, 1, 1024, 3<<20 + 5} {
		resp, err := http.Get("http://" + s.Addr.String() + "/bytes/" + strconv.Itoa(n))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || got != int64(n) {
			t.Errorf("/bytes/%d: %d, %d bytes", n, resp.StatusCode, got)
		}
	}
	resp, err := http.Get("http://" + s.Addr.String() + "/bytes/-1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("/bytes/-1: %d, want 400", resp.StatusCode)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"100MiB": 100 << 20, "16mib": 16 << 20, "64KiB": 64 << 10, "1GiB": 1 << 30, "1000": 1000, "5B": 5, "2MB": 2e6, "3KB": 3000} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MiB", "-1MiB", "0", "1.5MiB", "10XB", "1 MiB"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q): no error", in)
		}
	}
	if s := sizeName(100 << 20); s != "100 MiB" {
		t.Errorf("sizeName = %q", s)
	}
}

func TestCompareFlags(t *testing.T) {
	c := DefaultCompare()
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	finish := CompareFlags(fs, &c)
	if err := fs.Parse([]string{"-runs", "5", "-size", "32MiB", "-flow-size", "1MiB", "-baseline", "none", "-inprocess", "-json"}); err != nil {
		t.Fatal(err)
	}
	if err := finish(); err != nil {
		t.Fatal(err)
	}
	if c.Runs != 5 || c.Size != 32<<20 || c.FlowSize != 1<<20 || c.Baseline != "none" || !c.InProcess || !c.JSON || c.Exe == "" {
		t.Errorf("flags gave %+v", c)
	}
	if err := c.Check(); err != nil {
		t.Error(err)
	}
	for _, bad := range []func(*CompareConfig){
		func(c *CompareConfig) { c.Baseline = "yggdrasil" },
		func(c *CompareConfig) { c.Nodes = 3 },
		func(c *CompareConfig) { c.Runs = 0 },
		func(c *CompareConfig) { c.Idle = 0 },
	} {
		c := DefaultCompare()
		bad(&c)
		if c.Check() == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}

// A table without a baseline names it "none" and has empty base columns.
func TestTableNoBaseline(t *testing.T) {
	c := DefaultCompare()
	c.Baseline, c.Command = "none", "tarzan bench compare -baseline none"
	tz := &side{name: "tarzan", s: samples{bulkMBps: []float64{7, 9, 8}}}
	tab := c.table([]*side{tz})
	if len(tab.Metrics) != 10 || tab.Metrics[0].Base != "none" || tab.Metrics[0].TestMedian() != 8 || !math.IsNaN(tab.Metrics[0].Ratio()) {
		t.Errorf("table %+v", tab.Metrics[0])
	}
	var txt, js bytes.Buffer
	if err := tab.WriteText(&txt); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(txt.String(), "100 MiB through SOCKS") || !strings.Contains(txt.String(), "reproduce: tarzan bench compare -baseline none") {
		t.Errorf("text:\n%s", txt.String())
	}
	if err := tab.WriteJSON(&js); err != nil || !json.Valid(js.Bytes()) {
		t.Errorf("json: %v\n%s", err, js.String())
	}
}

// -only runs the named workloads and the table shows only theirs; an
// unknown name is refused before anything starts.
func TestCompareOnly(t *testing.T) {
	c := DefaultCompare()
	c.Baseline, c.Only = "none", "setup, ttfb"
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	for _, w := range workloads {
		if want := w == "setup" || w == "ttfb"; c.runs(w) != want {
			t.Errorf("runs(%s) = %v", w, !want)
		}
	}
	tz := &side{name: "tarzan", s: samples{setupMS: []float64{5}, ttfbMS: []float64{9}}}
	tab := c.table([]*side{tz})
	if len(tab.Metrics) != 2 || !strings.Contains(tab.Metrics[0].Name, "first byte") || !strings.Contains(tab.Metrics[1].Name, "setup") {
		t.Errorf("table with -only setup,ttfb: %+v", tab.Metrics)
	}
	c.Only = "setup,latency"
	if err := c.Check(); err == nil || !strings.Contains(err.Error(), `"latency"`) {
		t.Errorf("-only with an unknown workload: %v", err)
	}
	if c := DefaultCompare(); !c.runs("idle") {
		t.Error("without -only every workload runs")
	}
}
