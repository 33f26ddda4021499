package tunbench

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CPU accounting: the CPU time (utime + stime from /proc/PID/stat) of a
// set of processes and all their descendants (a node's plugin children),
// read before and after a workload.

// clockTicks is the kernel's USER_HZ, the unit of /proc/PID/stat's times;
// 100 on every Linux this runs on.
const clockTicks = 100

// procStat is what /proc/PID/stat says of one process.
type procStat struct {
	ppid  int
	ticks uint64 // utime + stime
}

// parseStat reads /proc/PID/stat's text: the fields after the command
// name (which may hold spaces and parentheses) start at its last ')'.
func parseStat(s string) (procStat, bool) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(s[i+1:])
	// f[0] is state (field 3); ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return procStat{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	ut, err2 := strconv.ParseUint(f[11], 10, 64)
	st, err3 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return procStat{}, false
	}
	return procStat{ppid: ppid, ticks: ut + st}, true
}

// allStats reads every process's stat.
func allStats() map[int]procStat {
	out := map[int]procStat{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		if st, ok := parseStat(string(b)); ok {
			out[pid] = st
		}
	}
	return out
}

// treeTicks sums the ticks of roots and every descendant in stats.
func treeTicks(stats map[int]procStat, roots []int) (ticks uint64, procs int) {
	children := map[int][]int{}
	for pid, st := range stats {
		children[st.ppid] = append(children[st.ppid], pid)
	}
	seen := map[int]bool{}
	todo := append([]int(nil), roots...)
	for len(todo) > 0 {
		pid := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		if st, ok := stats[pid]; ok {
			ticks += st.ticks
			procs++
		}
		todo = append(todo, children[pid]...)
	}
	return ticks, procs
}

// cpuSeconds is the CPU time so far of roots and their descendants, and
// how many processes that is.
func cpuSeconds(roots []int) (float64, int) {
	t, n := treeTicks(allStats(), roots)
	return float64(t) / clockTicks, n
}
