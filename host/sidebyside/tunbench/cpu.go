package tunbench

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
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

// tree lists roots and every descendant of theirs in stats, each once.
func tree(stats map[int]procStat, roots []int) []int {
	children := map[int][]int{}
	for pid, st := range stats {
		children[st.ppid] = append(children[st.ppid], pid)
	}
	var pids []int
	seen := map[int]bool{}
	todo := append([]int(nil), roots...)
	for len(todo) > 0 {
		pid := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		pids = append(pids, pid)
		todo = append(todo, children[pid]...)
	}
	return pids
}

// treeTicks sums the ticks of roots and every descendant in stats.
func treeTicks(stats map[int]procStat, roots []int) (ticks uint64, procs int) {
	for _, pid := range tree(stats, roots) {
		if st, ok := stats[pid]; ok {
			ticks += st.ticks
			procs++
		}
	}
	return ticks, procs
}

// cpuSeconds is the CPU time so far of roots and their descendants, and
// how many processes that is.
func cpuSeconds(roots []int) (float64, int) {
	t, n := treeTicks(allStats(), roots)
	return float64(t) / clockTicks, n
}

// cpuBreakdown writes, per process of the trees under roots, the CPU
// seconds it used between two allStats snapshots and its command line,
// the busiest first: where a workload's CPU went (the run's work
// directory keeps it as cpu-tcp.txt).
func cpuBreakdown(path string, before, after map[int]procStat, roots []int) error {
	type row struct {
		pid  int
		secs float64
		cmd  string
	}
	var rows []row
	for _, pid := range tree(after, roots) {
		a, ok := after[pid]
		if !ok {
			continue
		}
		d := a.ticks - before[pid].ticks
		cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		rows = append(rows, row{pid, float64(d) / clockTicks, strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].secs > rows[j].secs })
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "%8.2f  %7d  %s\n", r.secs, r.pid, r.cmd)
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
