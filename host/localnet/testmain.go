package localnet

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/host"
)

// RunTestsOrNode is the TestMain of packages whose tests start node processes
// with Net.Start(os.Args[0]): started as `BIN node -c FILE`, the test
// binary runs that node (every plugin in process, as its config says) until
// SIGTERM instead of the tests, so no test needs a built cmd/tarzan.
// Call it as `func TestMain(m *testing.M) { localnet.RunTestsOrNode(m) }`.
func RunTestsOrNode(m interface{ Run() int }) {
	if len(os.Args) == 4 && os.Args[1] == "node" && os.Args[2] == "-c" {
		os.Exit(runNode(os.Args[3]))
	}
	os.Exit(m.Run())
}

func runNode(path string) int {
	cfg, err := config.Load(path)
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		var h *host.Host
		if h, err = host.Start(ctx, cfg, host.Options{}); err == nil {
			<-h.Done()
			return 0
		}
	}
	fmt.Fprintln(os.Stderr, "node:", err)
	return 1
}
