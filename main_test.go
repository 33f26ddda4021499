package tarzan_test

import (
	"log/slog"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that Close leaves no goroutine behind (the package
// comment promises it), and keeps the nodes' info logs out of test output.
func TestMain(m *testing.M) {
	slog.SetLogLoggerLevel(slog.LevelWarn)
	goleak.VerifyTestMain(m,
		// kcp-go's package-wide update scheduler (SystemTimedSched) runs
		// for the life of the process once the kcp plugin is linked in.
		goleak.IgnoreTopFunction("github.com/xtaci/kcp-go/v5.(*TimedSched).sched"),
		goleak.IgnoreTopFunction("github.com/xtaci/kcp-go/v5.(*TimedSched).prepend"))
}
