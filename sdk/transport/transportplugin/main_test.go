package transportplugin

import (
	"fmt"
	"os"
	"testing"

	"github.com/hashicorp/go-plugin"

	"github.com/tarzan-net/tarzan/sdk/internal/datachan"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// helperArg makes the test binary act as a plugin (go-plugin's
// TestHelperProcess idiom, done in TestMain so no -test.run is needed).
const helperArg = "tarzan-test-plugin"

func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == helperArg {
		serveHelper(os.Args[2])
		os.Exit(0)
	}
	// Under -race every process sleeps 1 s at exit (atexit_sleep_ms);
	// children inherit this so closing one does not cost a second.
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	os.Exit(m.Run())
}

func serveHelper(mode string) {
	switch mode {
	case "udp":
		Serve(newUDP)
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

func helper(t testing.TB, mode string) pluginkit.Launcher {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return pluginkit.Launcher{Path: exe, Args: []string{helperArg, mode}, Name: "test-" + mode}
}

func launch(t testing.TB) transport.Transport {
	t.Helper()
	tr, err := Launch(helper(t, "udp"), map[string]string{"k": "v"})
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	return tr
}
