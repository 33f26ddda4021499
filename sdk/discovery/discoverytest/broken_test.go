package discoverytest

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/discovery"
	"github.com/tarzan-net/tarzan/sdk/internal/plugintest"
)

func TestFakeConforms(t *testing.T) {
	Run(t, func(*testing.T) discovery.Discovery { return New() }, Options{})
}

func TestMessagingConforms(t *testing.T) {
	Run(t, func(*testing.T) discovery.Discovery { return NewMessaging() }, Options{})
}

// busy returns an empty batch at once instead of blocking.
type busy struct{ *Fake }

func (b busy) Next(ctx context.Context) ([]discovery.Proposal, error) {
	b.mu.Lock()
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return nil, discovery.ErrClosed
	}
	return []discovery.Proposal{}, nil
}

// deaf ignores Next's context: only Close ends a wait.
type deaf struct{ *Fake }

func (d deaf) Next(context.Context) ([]discovery.Proposal, error) {
	return d.Fake.Next(context.Background())
}

// flood proposes 5,000 addresses in one batch.
func flood() discovery.Discovery {
	f := New()
	for i := range 5000 {
		f.Propose(discovery.Proposal{Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 9, byte(i >> 8), byte(i)}), 7000)})
	}
	return f
}

// naive proposes whatever it is sent: the data as a descriptor, the
// source as a peer.
type naive struct{ *Messaging }

func (n naive) Deliver(msgs []discovery.Message) error {
	for _, m := range msgs {
		if len(m.Data) > 0 {
			n.Propose(discovery.Proposal{Descriptor: m.Data, Addr: m.Addr})
		}
	}
	return nil
}

// echo answers every message with eight to its source.
type echo struct{ *Messaging }

func (e echo) Deliver(msgs []discovery.Message) error {
	for _, m := range msgs {
		for range 8 {
			e.Send(discovery.Message{Addr: m.Addr, Data: []byte("hello")})
		}
	}
	return nil
}

// forger proposes a descriptor whose signature does not verify (here:
// without the prefix forgeryVerify wants).
func forger() discovery.Discovery {
	f := New()
	f.Propose(discovery.Proposal{Descriptor: []byte("FORGED descriptor")})
	return f
}

// forgeryVerify stands in for descriptor.Parse: signed means "SIGNED".
func forgeryVerify(b []byte) error {
	if !strings.HasPrefix(string(b), "SIGNED") {
		return errors.New("bad signature")
	}
	return nil
}

var brokenBackends = map[string]struct {
	make  func() discovery.Discovery
	fails map[string]string
	opts  Options
}{
	"forger": {forger, map[string]string{"proposals": "does not verify (forged or corrupt)"},
		Options{Verify: forgeryVerify}},
	"busy": {func() discovery.Discovery { return busy{New()} },
		map[string]string{"proposals": "must block", "next honours its context": "want ctx.Err()"}, Options{}},
	"deaf": {func() discovery.Discovery { return deaf{New()} },
		map[string]string{"proposals": "must watch ctx", "next honours its context": "must watch ctx"}, Options{}},
	"flood": {flood, map[string]string{"proposals": "at most 1024"}, Options{}},
	"naive": {func() discovery.Discovery { return naive{NewMessaging()} },
		// The first junk it proposes fails it: too large, or a
		// stranger's address.
		map[string]string{"hostile messages": "127.77."}, Options{}},
	"echo": {func() discovery.Discovery { return echo{NewMessaging()} },
		map[string]string{"hostile messages": "which only sent junk"}, Options{}},
}

const brokenEnv = "DISCOVERYTEST_BROKEN"

// TestBrokenChild runs the suite on the backend named in
// $DISCOVERYTEST_BROKEN, for TestBrokenBackendsFail.
func TestBrokenChild(t *testing.T) {
	name := os.Getenv(brokenEnv)
	if name == "" {
		t.Skip("run by TestBrokenBackendsFail")
	}
	b := brokenBackends[name]
	Run(t, func(*testing.T) discovery.Discovery { return b.make() }, b.opts)
}

// TestBrokenBackendsFail runs the suite on each broken backend in a child
// process and requires it to fail exactly the checks it breaks, saying
// why.
func TestBrokenBackendsFail(t *testing.T) {
	for name, b := range brokenBackends {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, out := plugintest.RunBrokenChild(t, brokenEnv, name, 2*time.Minute)
			var want []string
			for c := range b.fails {
				want = append(want, c)
			}
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("the %s backend failed %q; want exactly %q\n%s", name, got, want, out)
			}
			for c, phrase := range b.fails {
				if !strings.Contains(string(out), phrase) {
					t.Errorf("the %s backend failed %q without saying %q\n%s", name, c, phrase, out)
				}
			}
		})
	}
}
