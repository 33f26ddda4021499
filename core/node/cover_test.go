package node

import (
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/sdk/cover"
)

type fixedRate float64

func (f fixedRate) Name() string            { return "fixed" }
func (f fixedRate) Interval() time.Duration { return 50 * time.Millisecond }
func (f fixedRate) Close() error            { return nil }
func (f fixedRate) Tick(now time.Time, links []cover.LinkStats) ([]cover.Target, error) {
	out := make([]cover.Target, len(links))
	for i := range out {
		out[i].Rate = float64(f)
	}
	return out, nil
}

func mustParse(t *testing.T, b []byte) *descriptor.Descriptor {
	t.Helper()
	d, err := descriptor.Parse(b, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return d
}
