package discoveryplugin_test

import (
	"testing"

	"github.com/tarzan-net/tarzan/sdk/discovery"
	"github.com/tarzan-net/tarzan/sdk/discovery/discoveryplugin"
	"github.com/tarzan-net/tarzan/sdk/discovery/discoverytest"
	"github.com/tarzan-net/tarzan/sdk/internal/plugintest"
)

// TestConformanceOutOfProcess runs the discovery suite against backends
// in a child process, as a node runs them.
func TestConformanceOutOfProcess(t *testing.T) {
	for _, mode := range []string{"echo", "mirror"} {
		t.Run(mode, func(t *testing.T) {
			discoverytest.Run(t, func(t *testing.T) discovery.Discovery {
				d, err := discoveryplugin.Launch(plugintest.Launcher(t, mode), nil)
				if err != nil {
					t.Fatalf("Launch: %v", err)
				}
				return d
			}, discoverytest.Options{})
		})
	}
}
