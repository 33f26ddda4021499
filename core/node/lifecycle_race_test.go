//go:build race

package node

// lifecycleRace: the race detector slows the 5,000-tunnel test fifteenfold
// (137 s against 10 s), too long for CI's -race run.
const lifecycleRace = true
