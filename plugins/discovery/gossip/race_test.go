//go:build race

package gossip

// raceEnabled lets the slowest simulations step aside under -race, where
// signature checks cost ten times as much; the 50-node ones still run.
const raceEnabled = true
