package transportplugin

import (
	"fmt"
	"os"
	"testing"

	"github.com/hashicorp/go-plugin"

	"github.com/tarzan-net/tarzan/sdk/internal/datachan"
	"github.com/tarzan-net/tarzan/sdk/internal/plugintest"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

func TestMain(m *testing.M) { plugintest.Main(m, serveHelper) }

// serveHelper is the child side of the re-executed test binary.
func serveHelper(mode string) {
	switch mode {
	case "udp":
		Serve(newUDP)
	case "echo":
		Serve(newEcho)
	case "params": // implements every optional interface of params.go
		Serve(newParamsUDP)
	case "paramsonly": // publishes parameters and nothing else
		Serve(newParamsOnlyUDP)
	case "socketonly": // a plugin from before shared memory: ignores the offer
		data, err := datachan.OpenChild()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		pluginkit.Serve(Kind, versions(&grpcPlugin{factory: newUDP, data: data}))
	case "hostile":
		serveHostile()
	case "v2": // a plugin from the future: speaks only protocol version 2
		data, err := datachan.OpenChild()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		pluginkit.Serve(Kind, map[int]plugin.Plugin{2: &grpcPlugin{factory: newUDP, data: data}})
	default:
		fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
		os.Exit(2)
	}
}

func helper(t testing.TB, mode string) pluginkit.Launcher { return plugintest.Launcher(t, mode) }

func launch(t testing.TB) transport.Transport {
	t.Helper()
	tr, err := Launch(helper(t, "udp"), map[string]string{"k": "v"})
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	return tr
}
