package host

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tarzan-net/tarzan/sdk/adapter"
)

// fakeClient is an in-process client adapter that counts Open and Close.
type fakeClient struct {
	opens, closes atomic.Int32
	closed        chan struct{}
}

func newFakeClient() *fakeClient { return &fakeClient{closed: make(chan struct{})} }

func (f *fakeClient) Name() string                                 { return "fake" }
func (f *fakeClient) Role() adapter.Role                           { return adapter.RoleClient }
func (f *fakeClient) Open(adapter.Config) error                    { f.opens.Add(1); return nil }
func (f *fakeClient) WritePackets(p []adapter.Packet) (int, error) { return len(p), nil }
func (f *fakeClient) ReadPackets([]adapter.Packet) (int, error) {
	<-f.closed
	return 0, errors.New("fake: closed")
}
func (f *fakeClient) Close() error {
	if f.closes.Add(1) == 1 {
		close(f.closed)
	}
	return nil
}

// Options.Clients is the node's client adapter: opened by the core,
// listed by the control API, closed exactly once by Close.
func TestClientsOption(t *testing.T) {
	fc := newFakeClient()
	h, err := Start(context.Background(), testConfig(t), Options{Clients: []adapter.Adapter{fc}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := h.Control().Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	listed := false
	for _, p := range st.Plugins {
		listed = listed || (p.Kind == "adapter" && p.Name == "fake" && p.InProc)
	}
	if !listed || fc.opens.Load() != 1 {
		t.Fatalf("client adapter opened %d times, listed %v in %+v", fc.opens.Load(), listed, st.Plugins)
	}
	h.Close()
	h.Close()
	if n := fc.closes.Load(); n != 1 {
		t.Fatalf("client adapter closed %d times, want 1", n)
	}
}

// A configuration that names a client adapter and Options.Clients
// together is refused (the core runs one), and the caller's adapter is
// closed: Start took it over.
func TestClientsAndConfigAdapterRefused(t *testing.T) {
	fc := newFakeClient()
	cfg := testConfig(t)
	cfg.Adapter.Name, cfg.Adapter.InProcess = "socks", true
	cfg.Adapter.Options = map[string]string{"listen": "127.0.0.1:0"}
	h, err := Start(context.Background(), cfg, Options{Clients: []adapter.Adapter{fc}})
	if err == nil {
		h.Close()
		t.Fatal("Start accepted two client adapters")
	}
	if !strings.Contains(err.Error(), "the node runs at most one") {
		t.Fatalf("error %q does not say why", err)
	}
	if n := fc.closes.Load(); n != 1 {
		t.Fatalf("caller's adapter closed %d times after Start failed, want 1", n)
	}
}

// A Start that fails before opening plugins closes the caller's adapters too.
func TestClientsClosedOnEarlyFailure(t *testing.T) {
	fc := newFakeClient()
	cfg := testConfig(t)
	cfg.Node.Identity = cfg.Node.Identity + ".missing"
	if _, err := Start(context.Background(), cfg, Options{Clients: []adapter.Adapter{fc}}); err == nil {
		t.Fatal("Start without an identity key succeeded")
	}
	if n := fc.closes.Load(); n != 1 {
		t.Fatalf("caller's adapter closed %d times, want 1", n)
	}
}
