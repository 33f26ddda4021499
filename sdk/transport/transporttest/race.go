//go:build race

package transporttest

// raceSlack multiplies the suite's time bounds and divides its
// throughput floor by two more under the race detector, which slows code
// 2–20× (CI runs the suite with -race beside every other package).
const raceSlack = 2
