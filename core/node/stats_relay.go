package node

// Counters of the relay and tunnel engine added by protocol v2 (relay.go,
// recv.go, relay_limits.go, tunnel.go, repair.go). Same conventions as stats.go.
const (
	DropReservedBytes    = "drop_reserved_nonzero"   // link plaintext whose reserved header bytes were not zero (a tagging attempt)
	DropCircuitTagBudget = "drop_circuit_tag_budget" // circuit torn down: more cells failed their onion tag than the budget allows (forgery)
	DropCreateLimit      = "drop_create_limit"       // CREATE refused before any key work: circuits per link or per node at the limit
	DropCreateRate       = "drop_create_rate"        // CREATE refused before any key work: the link's handshake rate (Options.CreateRate) used up
	EventTunnelsRebuilt  = "tunnels_rebuilt"         // tunnel repaired past the repair cap: rebuilt on a fresh path
)
