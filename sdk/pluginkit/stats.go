package pluginkit

import "time"

// Stats describes a supervised plugin process.
type Stats struct {
	Name          string    // Launcher.Name
	Kind          string    // "transport", "discovery", "cover", "adapter"
	Running       bool      // a child is up and has been given its state
	PID           int       // the current child's process ID (0 when none)
	Started       time.Time // when the current child was started
	Restarts      uint64    // children started after the first one
	StartFailures uint64    // start attempts that failed (the first excepted)
	LastError     string    // why the last child died or failed to start

	// Counters holds kind-specific numbers (batches, packets, drops, ...).
	Counters map[string]uint64
}

// Reporter is implemented by every host-side client Launch returns. Find it
// by type assertion:
//
//	if r, ok := t.(pluginkit.Reporter); ok { log(r.PluginStats()) }
type Reporter interface {
	Restarts() uint64
	PluginStats() Stats
}
