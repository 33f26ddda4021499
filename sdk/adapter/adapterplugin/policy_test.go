package adapterplugin_test

import (
	"errors"
	"testing"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/adapter/adapterplugin"
	"github.com/tarzan-net/tarzan/sdk/adapter/adaptertest"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
	"github.com/tarzan-net/tarzan/sdk/internal/plugintest"
)

// policyTaker is the child's adapter in mode "policy": it takes a new
// exit policy (adapter.PolicyUpdater) and sends it back on flow 2.
type policyTaker struct{ *adaptertest.Fake }

func (p policyTaker) SetExitPolicy(pol *exitpolicy.Policy) error {
	msg := "policy=" + pol.String()
	p.Inject(adapter.Packet{Buf: []byte(msg), N: len(msg), Flow: 2})
	return nil
}

// A reloaded exit policy reaches a child whose adapter takes one, whole;
// a child whose adapter does not gets ErrPolicyFixed, so the host can say
// the adapter keeps its old policy.
func TestExitPolicyReachesChild(t *testing.T) {
	pol, err := exitpolicy.Parse([]string{"reject private", "accept tcp 192.0.2.0/24:443", "reject *"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := adapterplugin.Launch(plugintest.Launcher(t, "policy"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Open(adapter.Config{MTU: 1280, ExitPolicy: exitpolicy.Default()}); err != nil {
		t.Fatal(err)
	}
	pu, ok := a.(adapter.PolicyUpdater)
	if !ok {
		t.Fatal("the plugin client does not implement adapter.PolicyUpdater")
	}
	if err := pu.SetExitPolicy(pol); err != nil {
		t.Fatal(err)
	}
	if got, want := string(readN(t, a, 1)[0].Buf), "policy="+pol.String(); got != want {
		t.Fatalf("the child took %q, want %q", got, want)
	}

	b, err := adapterplugin.Launch(plugintest.Launcher(t, "echo"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.Open(adapter.Config{MTU: 1280}); err != nil {
		t.Fatal(err)
	}
	if err := b.(adapter.PolicyUpdater).SetExitPolicy(pol); !errors.Is(err, adapterplugin.ErrPolicyFixed) {
		t.Fatalf("SetExitPolicy on an adapter that takes none: %v, want ErrPolicyFixed", err)
	}
}
