package localnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Idle cost: what a network's processes use while nothing is asked of
// them. A node's cost is its own process and every plugin child it
// started: each node leads its own process group (Start sets it), so the
// group is the node with its plugins.
//
// CPU is Δ(utime+stime) from /proc/PID/stat over the window; context
// switches are Δ voluntary_ctxt_switches summed over every thread's
// /proc/PID/task/TID/status. A process that starts or ends inside the
// window counts from when it is first or until it is last seen.

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat:
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// ProcSample is one process's counters at one instant.
type ProcSample struct {
	PID      int
	Name     string  // its command line, shortened ("tarzan plugin serve transport udp" → "transport udp")
	CPU      float64 // utime+stime, seconds
	Switches uint64  // voluntary context switches of all its threads (its wake-ups)
}

// IdleProc is one process's cost over a window.
type IdleProc struct {
	PID      int
	Name     string
	Cores    float64 // CPU-seconds per second
	Switches float64 // voluntary context switches (wake-ups) per second
}

// IdleNode is one node's cost over a window: its process and plugin
// children together, and each of them.
type IdleNode struct {
	Name     string
	Cores    float64
	Switches float64
	Procs    []IdleProc
}

// IdleCPU measures every running node with its plugin children over
// window: the cores each used (CPU-seconds per second) and their sum.
func (nw *Net) IdleCPU(ctx context.Context, window time.Duration) (perNode []float64, total float64, err error) {
	nodes, err := nw.Idle(ctx, window)
	if err != nil {
		return nil, 0, err
	}
	for _, n := range nodes {
		perNode = append(perNode, n.Cores)
		total += n.Cores
	}
	return perNode, total, nil
}

// Idle measures every running node with its plugin children over window:
// cores and context switches per second, per node and per process.
func (nw *Net) Idle(ctx context.Context, window time.Duration) ([]IdleNode, error) {
	nw.mu.Lock()
	nodes := append([]*Node(nil), nw.started...)
	nw.mu.Unlock()
	if len(nodes) == 0 {
		return nil, errors.New("idle: no node running")
	}
	groups := make([]int, len(nodes))
	for i, n := range nodes {
		groups[i] = n.PID()
	}
	got, err := MeasureGroups(ctx, groups, window)
	if err != nil {
		return nil, err
	}
	out := make([]IdleNode, len(nodes))
	for i, n := range nodes {
		out[i] = IdleNode{Name: n.Name, Procs: got[i]}
		for _, p := range got[i] {
			out[i].Cores += p.Cores
			out[i].Switches += p.Switches
		}
	}
	return out, nil
}

// MeasureGroups samples every process of each process group, waits for
// window (or ctx), samples again, and returns each group's processes'
// cores and context switches per second. A group whose leader is gone
// at the start is an error. It serves any processes started in their
// own groups (a Tor relay as much as a node).
func MeasureGroups(ctx context.Context, pgids []int, window time.Duration) ([][]IdleProc, error) {
	before, err := SampleGroups(pgids)
	if err != nil {
		return nil, err
	}
	for i, s := range before {
		if len(s) == 0 {
			return nil, fmt.Errorf("idle: process group %d has no process", pgids[i])
		}
	}
	start := time.Now()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(window):
	}
	after, err := SampleGroups(pgids)
	if err != nil {
		return nil, err
	}
	secs := time.Since(start).Seconds()
	out := make([][]IdleProc, len(pgids))
	for i := range pgids {
		out[i] = diffSamples(before[i], after[i], secs)
	}
	return out, nil
}

// diffSamples turns two samples of one group into rates; a process seen
// only once counts from zero (started) or not at all (ended).
func diffSamples(before, after []ProcSample, secs float64) []IdleProc {
	was := map[int]ProcSample{}
	for _, s := range before {
		was[s.PID] = s
	}
	var out []IdleProc
	for _, s := range after {
		b := was[s.PID]
		p := IdleProc{PID: s.PID, Name: s.Name, Cores: (s.CPU - b.CPU) / secs}
		if s.Switches > b.Switches { // a thread that ended takes its count along
			p.Switches = float64(s.Switches-b.Switches) / secs
		}
		out = append(out, p)
	}
	return out
}

// SampleGroups reads the counters of every process in each process group
// (one pass over /proc).
func SampleGroups(pgids []int) ([][]ProcSample, error) {
	want := map[int]int{}
	for i, g := range pgids {
		want[g] = i
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("idle: %w", err)
	}
	out := make([][]ProcSample, len(pgids))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		pgrp, cpu, err := readStat(pid)
		if err != nil {
			continue // gone, or not ours to read
		}
		i, ok := want[pgrp]
		if !ok {
			continue
		}
		out[i] = append(out[i], ProcSample{PID: pid, Name: procName(pid), CPU: cpu, Switches: threadSwitches(pid)})
	}
	return out, nil
}

// readStat returns a process's group and its utime+stime in seconds.
func readStat(pid int) (pgrp int, cpu float64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields that follow start after its last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): pgrp is field 5, utime 14, stime 15.
	if len(f) < 13 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	pgrp, err1 := strconv.Atoi(f[2])
	ut, err2 := strconv.ParseUint(f[11], 10, 64)
	st, err3 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return pgrp, float64(ut+st) / clockTicks, nil
}

// threadSwitches sums the voluntary context switches of every thread of
// pid: each is a thread going to sleep, so they count wake-ups. The
// involuntary ones count preemptions, which follow the machine's load
// more than the process.
func threadSwitches(pid int) uint64 {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	var sum uint64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, ":")
			if ok && k == "voluntary_ctxt_switches" {
				n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
				sum += n
			}
		}
	}
	return sum
}

// procName is pid's command line, without the executable's directory and
// without "plugin serve" for a plugin child.
func procName(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || len(b) == 0 {
		return strconv.Itoa(pid)
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	args[0] = filepath.Base(args[0])
	if len(args) >= 5 && args[1] == "plugin" && args[2] == "serve" {
		return strings.Join(args[3:], " ")
	}
	if len(args) > 2 {
		args = args[:2]
	}
	return strings.Join(args, " ")
}
