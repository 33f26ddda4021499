//go:build !race

package transporttest

const raceSlack = 1
