package transporttest

import (
	"context"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/transport"
)

// TestTCPConformance: a stream transport written to the contract passes.
func TestTCPConformance(t *testing.T) {
	Run(t, func(*testing.T) transport.Transport { return newTCP(flawNone) })
}

// reorderTransport delivers every batch backwards.
type reorderTransport struct{ *memTransport }

func (r reorderTransport) WriteBatch(pkts []transport.Packet) error {
	rev := slices.Clone(pkts)
	slices.Reverse(rev)
	return r.memTransport.WriteBatch(rev)
}

// slowTransport spends 20 ms on every datagram it sends (50 a second,
// 70 kB/s), like a transport that paces or serialises on something slow.
type slowTransport struct{ *memTransport }

func (s slowTransport) WriteBatch(pkts []transport.Packet) error {
	time.Sleep(time.Duration(len(pkts)) * 20 * time.Millisecond)
	return s.memTransport.WriteBatch(pkts)
}

// spacedParams publishes bridge arguments a descriptor cannot carry.
type spacedParams struct{ *memTransport }

func (spacedParams) Params() string { return "cert=abc iat-mode=0" }

// broken are the broken transports, each with the checks it must fail
// and a phrase each failure must contain: the suite fails them for the
// right reason, and only there.
var broken = map[string]struct {
	make  func(n *Network) transport.Transport
	fails map[string]string
}{
	"stall": {func(*Network) transport.Transport { return newTCP(flawStall) },
		map[string]string{"GonePeer": "did not return within"}},
	"block": {func(*Network) transport.Transport { return newTCP(flawBlock) },
		map[string]string{"Backpressure": "did not return within"}},
	"no-reconnect": {func(*Network) transport.Transport { return newTCP(flawNoReconnect) },
		map[string]string{"PeerRestart": "datagrams to the restarted peer never arrived"}},
	"ephemeral-source": {func(*Network) transport.Transport { return newTCP(flawEphemeralSource) },
		// Every check that looks at a source address.
		everyCheck("source address", "Listen", "OversizeDropped", "CloseUnblocksRead")},
	"bound-hello": {func(*Network) transport.Transport { return newTCP(flawBoundHello) },
		map[string]string{"UnspecifiedAdvertised": "source address 0.0.0.0:"}},
	"no-ipv6": {func(*Network) transport.Transport { return newTCP(flawNoIPv6) },
		map[string]string{"IPv6": "IPv6 not supported", "UnspecifiedAdvertised": "IPv6 not supported"}},
	"key-by-ip": {func(*Network) transport.Transport { return newTCP(flawKeyByIP) },
		map[string]string{"ManyPeers": "", "GonePeer": ""}},
	"reorder": {func(n *Network) transport.Transport { return reorderTransport{n.NewTransport().(*memTransport)} },
		map[string]string{"Order": "reordered"}},
	"spaced-params": {func(n *Network) transport.Transport { return spacedParams{n.NewTransport().(*memTransport)} },
		map[string]string{"Listen": "printable ASCII without spaces"}},
	"slow": {func(n *Network) transport.Transport { return slowTransport{n.NewTransport().(*memTransport)} },
		map[string]string{"Throughput": "below the floor"}},
}

// everyCheck expects every check of the suite but those named to fail,
// each saying phrase.
func everyCheck(phrase string, except ...string) map[string]string {
	m := map[string]string{}
	for _, c := range checks {
		if !slices.Contains(except, c) {
			m[c] = phrase
		}
	}
	return m
}

const brokenEnv = "TRANSPORTTEST_BROKEN"

// TestBrokenChild runs the suite on the broken transport named in
// $TRANSPORTTEST_BROKEN (for TestBrokenTransportsFail, in a child
// process, so that its failures are data and not this run's).
func TestBrokenChild(t *testing.T) {
	name := os.Getenv(brokenEnv)
	if name == "" {
		t.Skip("run by TestBrokenTransportsFail")
	}
	b, ok := broken[name]
	if !ok {
		t.Fatalf("no broken transport %q", name)
	}
	n := NewNetwork()
	Run(t, func(*testing.T) transport.Transport { return b.make(n) })
}

var failLine = regexp.MustCompile(`(?m)^\s*--- FAIL: TestBrokenChild/([^/\s]+)`)

func TestBrokenTransportsFail(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the suite once per broken transport")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range broken {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			want := slices.Sorted(func(yield func(string) bool) {
				for k := range b.fails {
					if !yield(k) {
						return
					}
				}
			})
			if name == "no-ipv6" && !hostHasIPv6() {
				t.Skip("this host cannot bind [::1]")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, exe, "-test.run=^TestBrokenChild$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), brokenEnv+"="+name)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the suite passed the %s transport; want it to fail %v", name, want)
			}
			var got []string
			for _, m := range failLine.FindAllStringSubmatch(string(out), -1) {
				if !slices.Contains(got, m[1]) {
					got = append(got, m[1])
				}
			}
			sort.Strings(got)
			if !slices.Equal(got, want) {
				t.Errorf("the %s transport failed %v; want exactly %v\n%s", name, got, want, out)
				return
			}
			for check, phrase := range b.fails {
				if !strings.Contains(string(out), phrase) {
					t.Errorf("the %s transport failed %s without saying %q\n%s", name, check, phrase, out)
				}
			}
		})
	}
}
