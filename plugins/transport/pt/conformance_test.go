package pt

import (
	"net/netip"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/transport"
	"github.com/tarzan-net/tarzan/sdk/transport/transporttest"
)

// needPT skips the test when obfs4proxy is not installed (CI installs it).
func needPT(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("obfs4proxy"); err != nil {
		t.Skip("obfs4proxy not installed (Debian: apt-get install obfs4proxy); skipping the PT tests")
	}
}

// registry stands in for the descriptors: every transport of a test
// publishes its bridge arguments there once it listens.
type registry struct {
	mu sync.Mutex
	m  map[netip.AddrPort]string
}

func (r *registry) lookup(a netip.AddrPort) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.m[a]
	return s, ok
}

// published is a pt transport that publishes its arguments on Listen.
type published struct {
	*Transport
	reg *registry
}

func (p published) Listen(a netip.AddrPort) (netip.AddrPort, error) {
	got, err := p.Transport.Listen(a)
	if err == nil {
		p.reg.mu.Lock()
		p.reg.m[got] = p.Params()
		p.reg.mu.Unlock()
	}
	return got, err
}

func newPublished(t testing.TB, reg *registry, opts map[string]string) published {
	t.Helper()
	tr, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	pt := tr.(*Transport)
	pt.SetResolver(reg.lookup)
	return published{pt, reg}
}

func TestConformanceObfs4(t *testing.T) {
	needPT(t)
	reg := &registry{m: map[netip.AddrPort]string{}}
	// A restarted peer here has a new cert (no state_dir), and pt tries it
	// only after a dial with the proven old one failed (params.go: a forged
	// descriptor must not displace a working cert), which takes obfs4's
	// handshake timeout.
	transporttest.RunOptions(t, func(t *testing.T) transport.Transport {
		return newPublished(t, reg, nil)
	}, transporttest.Options{RestartWithin: 40 * time.Second})
}
