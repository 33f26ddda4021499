package transportbench

import (
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tarzan-net/tarzan/sdk/pluginkit"
	"github.com/tarzan-net/tarzan/sdk/transport"
)

// cpuMeter reads the CPU time (user + system) of this process and of the
// plugin children behind the transports it was given: every process that
// moves a frame in a case. Where /proc is missing it reads only this
// process.
type cpuMeter struct {
	pids []int
}

func newCPUMeter(ts ...transport.Transport) cpuMeter {
	var m cpuMeter
	for _, t := range ts {
		if r, ok := t.(pluginkit.Reporter); ok {
			if pid := r.PluginStats().PID; pid > 0 {
				m.pids = append(m.pids, pid)
			}
		}
	}
	return m
}

// read returns the CPU time used so far.
func (m cpuMeter) read() time.Duration {
	total := selfCPU()
	for _, pid := range m.pids {
		total += procCPU(pid)
	}
	return total
}

// clockTick is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go supports.
const clockTick = 100

// procCPU returns utime+stime of pid from /proc/PID/stat, 0 if unreadable.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start at ")".
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 { // state is field 3; utime and stime are 14 and 15
		return 0
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0
	}
	return time.Duration(ut+st) * time.Second / clockTick
}
