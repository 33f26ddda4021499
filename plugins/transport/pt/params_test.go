package pt

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

func candidates() *Transport {
	return &Transport{params: map[netip.AddrPort]*argSet{}, static: map[netip.AddrPort]string{}}
}

func mustArgs(t *testing.T, tr *Transport, a netip.AddrPort, want string) {
	t.Helper()
	got, ok := tr.argsFor(a)
	if !ok || got != want {
		t.Fatalf("argsFor(%v) = %q, %v; want %q", a, got, ok, want)
	}
}

// A forged descriptor naming a peer's address with a wrong cert neither
// displaces a cert that has worked nor, if it came first, keeps the right
// one from being tried.
func TestCandidateArgs(t *testing.T) {
	x := netip.MustParseAddrPort("192.0.2.1:443")
	good, evil := "cert=good,iat-mode=0", "cert=evil,iat-mode=0"

	t.Run("proven stays", func(t *testing.T) {
		tr := candidates()
		tr.SetPeerParams(x, good)
		tr.dialed(x, good, true)
		for i := range 10 {
			tr.SetPeerParams(x, fmt.Sprintf("cert=evil%d", i))
		}
		mustArgs(t, tr, x, good)
		tr.dialed(x, good, false) // the peer changed its cert: try the others
		if got, _ := tr.argsFor(x); got == good {
			t.Fatal("a failing cert is dialled again")
		}
	})
	t.Run("forged first", func(t *testing.T) {
		tr := candidates()
		tr.SetPeerParams(x, evil)
		tr.SetPeerParams(x, good)
		mustArgs(t, tr, x, evil)
		tr.dialed(x, evil, false)
		mustArgs(t, tr, x, good)
		tr.dialed(x, good, true)
		for i := range 10 {
			tr.SetPeerParams(x, fmt.Sprintf("cert=evil%d", i))
		}
		mustArgs(t, tr, x, good)
		if n := tr.stats.paramsRotated.Load(); n != 1 {
			t.Errorf("params_rotated = %d; want 1", n)
		}
	})
	t.Run("operator's line is a candidate", func(t *testing.T) {
		tr := candidates()
		tr.static[x] = good
		tr.SetPeerParams(x, evil)
		mustArgs(t, tr, x, evil)
		tr.dialed(x, evil, false)
		mustArgs(t, tr, x, good)
	})
	t.Run("bounded", func(t *testing.T) {
		tr := candidates()
		for i := range maxParamAddrs {
			if err := tr.SetPeerParams(netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(i+1)), good); err != nil {
				t.Fatal(err)
			}
		}
		if err := tr.SetPeerParams(x, good); err == nil {
			t.Fatal("no limit on addresses with arguments")
		}
		if s := tr.params[netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), 1)]; len(s.cands) != 1 {
			t.Fatalf("candidates %v", s.cands)
		}
		if err := tr.SetPeerParams(x, "cert"); err == nil || !strings.Contains(err.Error(), "pt: ") {
			t.Fatalf("malformed arguments: %v", err)
		}
	})
}

// Over obfs4: the first arguments a node is given for a peer are a forged
// cert (a descriptor anyone can sign naming the peer's address), the
// peer's own come second; frames still reach the peer, after one failed
// dial.
func TestForgedCertObfs4(t *testing.T) {
	needPT(t)
	reg := &registry{m: map[netip.AddrPort]string{}}
	a, b := newPublished(t, reg, nil), newPublished(t, reg, nil)
	defer a.Close()
	defer b.Close()
	a.SetResolver(nil)
	aAddr, err := a.Listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	bAddr, err := b.Listen(netip.MustParseAddrPort("127.0.0.1:0"))
	if err != nil {
		t.Fatal(err)
	}
	// Another obfs4 server's cert: well-formed, wrong for b.
	c := newPublished(t, reg, nil)
	defer c.Close()
	if _, err := c.Listen(netip.MustParseAddrPort("127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	if err := a.SetPeerParams(bAddr, c.Params()); err != nil {
		t.Fatal(err)
	}
	if err := a.SetPeerParams(bAddr, b.Params()); err != nil {
		t.Fatal(err)
	}
	took := recvFrom(t, a, b, bAddr, aAddr, []byte("through"), 40*time.Second)
	st := a.Stats()
	t.Logf("reached the peer %v after a forged cert; stats %v", took.Round(time.Millisecond), st)
	if st["params_rotated"] < 1 || st["dial_failures"] < 1 {
		t.Errorf("stats %v: want the forged cert's dial to fail and the next one tried", st)
	}
}

// SetAdvertised (transport.AdvertiseSetter) names the address our hello
// and bridge line carry: what a server on 0.0.0.0 cannot tell.
func TestSetAdvertised(t *testing.T) {
	needPT(t)
	dir := t.TempDir()
	tr, err := New(map[string]string{"state_dir": dir})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	as := tr.(*Transport)
	adv := netip.MustParseAddrPort("192.0.2.9:443")
	if err := as.SetAdvertised(adv); err == nil {
		t.Error("SetAdvertised before Listen succeeded")
	}
	bound, err := tr.Listen(netip.MustParseAddrPort("0.0.0.0:0"))
	if err != nil {
		t.Fatal(err)
	}
	if err := as.SetAdvertised(netip.AddrPortFrom(netip.IPv4Unspecified(), bound.Port())); err == nil {
		t.Error("SetAdvertised(0.0.0.0) succeeded")
	}
	if err := as.SetAdvertised(adv); err != nil {
		t.Fatal(err)
	}
	line := string(mustReadFile(t, dir+"/bridge"))
	if !strings.HasPrefix(line, adv.String()+" cert=") {
		t.Fatalf("bridge line %q; want it to name %v", line, adv)
	}
	if h := string(hello(as.self)); !strings.HasSuffix(h, adv.String()) {
		t.Fatalf("hello %q", h)
	}
}

func mustReadFile(t *testing.T, f string) []byte {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
