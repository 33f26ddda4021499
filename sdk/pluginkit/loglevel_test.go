package pluginkit

import (
	"log/slog"
	"testing"

	"github.com/hashicorp/go-hclog"
)

// Every level a child writes keeps its rank in the host's log: an INFO
// line stays INFO (hclog.DefaultLevel equals hclog.Info and once turned
// it into DEBUG).
func TestChildLevelsKeepTheirRank(t *testing.T) {
	for hl, want := range map[hclog.Level]slog.Level{
		hclog.Trace: slog.LevelDebug - 4, hclog.Debug: slog.LevelDebug, hclog.Info: slog.LevelInfo,
		hclog.Warn: slog.LevelWarn, hclog.Error: slog.LevelError, hclog.NoLevel: slog.LevelDebug,
	} {
		if got := toSlog(hl); got != want {
			t.Errorf("hclog %v → slog %v, want %v", hl, got, want)
		}
	}
}
