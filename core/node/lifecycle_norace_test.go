//go:build !race

package node

const lifecycleRace = false
