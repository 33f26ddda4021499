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
		// kcp-go keeps process-wide workers for the life of the process
		// once the kcp plugin is linked in: its update scheduler
		// (SystemTimedSched) and, since v5.7, a post-processing pool.
		goleak.IgnoreAnyFunction("github.com/xtaci/kcp-go/v5.(*TimedSched).run"),
		goleak.IgnoreAnyFunction("github.com/xtaci/kcp-go/v5.(*TimedSched).sched"),
		goleak.IgnoreAnyFunction("github.com/xtaci/kcp-go/v5.(*TimedSched).prepend"),
		goleak.IgnoreAnyFunction("github.com/xtaci/kcp-go/v5.postProcessWorker"))
}
