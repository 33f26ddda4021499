package node

import (
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/descriptor"
	"github.com/tarzan-net/tarzan/core/mimic"
)

// TestSimulationHooks checks that the simulation hooks replace table
// building and descriptor parsing, and that a paced rebuild still catches
// up once the view settles.
func TestSimulationHooks(t *testing.T) { synctest.Test(t, testSimulationHooks) }

func testSimulationHooks(t *testing.T) {
	var tables, parses atomic.Int64
	tn := startNet(t, 4, 2, func(i int, o *Options) {
		o.MimicTable = func(ms []mimic.Member, e uint64, k int) *mimic.Table {
			tables.Add(1)
			return mimic.NewTable(ms, e, k)
		}
		o.ParseDescriptor = func(b []byte, now time.Time) (*descriptor.Descriptor, error) {
			parses.Add(1)
			return descriptor.Parse(b, now)
		}
		o.MimicRebuildInterval = time.Hour
	})
	if tables.Load() == 0 || parses.Load() == 0 {
		t.Fatalf("hooks not used: %d tables, %d parses", tables.Load(), parses.Load())
	}
	// Every view is full: with an hour-long interval, tables catch up
	// only because the view settled (two maintenance intervals).
	for _, n := range tn.nodes {
		waitFor(t, "a table of the full view", 5*time.Second, func() bool { return n.mimicTable().Len() == len(tn.nodes) })
	}
	if _, err := New(Options{Identity: tn.nodes[0].opts.Identity, Transport: tn.net.NewTransport(), Listen: addrOf(9),
		Discovery: newListDiscovery(nil), MimicRebuildInterval: -time.Second}); err == nil {
		t.Error("negative MimicRebuildInterval accepted")
	}
}
