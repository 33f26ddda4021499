package sidebyside

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CPU accounting from /proc (Linux): the user+system time of a set of
// processes, so that an overlay's cost counts every process it runs
// (node processes and their plugin children; every tor).

// userHZ is the unit of utime and stime in /proc/PID/stat (USER_HZ,
// fixed at 100 on Linux whatever the kernel's HZ).
const userHZ = 100

// procStat is the part of /proc/PID/stat this package reads.
type procStat struct {
	PPID         int
	UTime, STime uint64 // clock ticks
}

// parseProcStat reads one /proc/PID/stat line. The command name (field
// 2) is in parentheses and may hold spaces, so fields count from the
// last ')'.
func parseProcStat(s string) (procStat, error) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("no ')' in %q", s)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
	if len(f) < 13 {
		return procStat{}, fmt.Errorf("%d fields after the command name, want at least 13", len(f))
	}
	var st procStat
	var err error
	if st.PPID, err = strconv.Atoi(f[1]); err != nil {
		return st, err
	}
	if st.UTime, err = strconv.ParseUint(f[11], 10, 64); err != nil {
		return st, err
	}
	if st.STime, err = strconv.ParseUint(f[12], 10, 64); err != nil {
		return st, err
	}
	return st, nil
}

// readProcs reads every process's stat (processes that vanish while
// being read are left out).
func readProcs() (map[int]procStat, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("CPU accounting needs Linux /proc: %w", err)
	}
	out := map[int]procStat{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		if st, err := parseProcStat(string(b)); err == nil {
			out[pid] = st
		}
	}
	return out, nil
}

// Tree returns roots and all their live descendants.
func Tree(roots []int) ([]int, error) {
	procs, err := readProcs()
	if err != nil {
		return nil, err
	}
	return tree(procs, roots), nil
}

func tree(procs map[int]procStat, roots []int) []int {
	children := map[int][]int{}
	for pid, st := range procs {
		children[st.PPID] = append(children[st.PPID], pid)
	}
	var out []int
	seen := map[int]bool{}
	queue := append([]int{}, roots...)
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if seen[pid] {
			continue
		}
		seen[pid] = true
		if _, live := procs[pid]; live {
			out = append(out, pid)
		}
		queue = append(queue, children[pid]...)
	}
	return out
}

// CPUSample is the CPU time used so far by each of a set of processes.
type CPUSample map[int]uint64 // pid → utime+stime in ticks

// SampleCPU reads the CPU time of roots and all their descendants.
func SampleCPU(roots []int) (CPUSample, error) {
	procs, err := readProcs()
	if err != nil {
		return nil, err
	}
	s := CPUSample{}
	for _, pid := range tree(procs, roots) {
		s[pid] = procs[pid].UTime + procs[pid].STime
	}
	return s, nil
}

// CPUSeconds is the CPU time used from before to after by the processes
// of after (a process that started in between counts from zero; one that
// ended in between is lost, which the overlays here avoid by keeping
// their processes for the whole run).
func CPUSeconds(before, after CPUSample) float64 {
	var ticks uint64
	for pid, t := range after {
		if b, ok := before[pid]; ok && b <= t {
			ticks += t - b
		} else if !ok {
			ticks += t
		}
	}
	return float64(ticks) / userHZ
}
