// Package runtimecfg holds the Go runtime settings of a node's processes:
// how many threads may run Go code at once (GOMAXPROCS) in the node and in
// each plugin child, and the children's timer slack. A Tarzan network on
// one machine is dozens of Go processes (each node, its transport, its
// adapters); every one of them runs the Go scheduler's idle machinery
// (spinning threads looking for work, the monitor thread polling), and
// that, not the packets, was a quarter of the profiles (D64 in
// docs/DECISIONS.md has the measurements).
//
// Each setting has a default and an environment variable that overrides
// it; GOMAXPROCS set in the node's environment is left to the Go runtime
// (the node's own and every child's, which inherit it) unless a Tarzan
// variable below names a value.
package runtimecfg

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// The environment variables a user may set for `tarzan node`.
const (
	// EnvPluginProcs is the GOMAXPROCS of plugin children: a number for
	// every plugin, or NAME=N pairs separated by commas ("*" for the
	// others), e.g. "1" or "pnat=2,*=1". 0 or "default" leaves a child
	// to Go's own choice (the number of CPUs).
	EnvPluginProcs = "TARZAN_PLUGIN_GOMAXPROCS"
	// EnvNodeProcs is the node process's own GOMAXPROCS (0: Go's choice).
	EnvNodeProcs = "TARZAN_NODE_GOMAXPROCS"
	// EnvTimerSlack is the timer slack given to plugin children, a Go
	// duration ("500us"); 0 leaves them the node's.
	EnvTimerSlack = "TARZAN_TIMERSLACK"
)

// Defaults, used where neither the variable above nor (for GOMAXPROCS)
// GOMAXPROCS itself is set (D64). One thread running Go code per
// process: with more, every wake-up of a mostly idle process readied a
// second thread to spin for work, and the many processes of a node paid
// that in futex calls and context switches (about 40 % of them), not in
// packets. A node at one core carries what one core can (Tor relays
// its cells on one thread too); TARZAN_NODE_GOMAXPROCS=0 gives a big exit
// every core. Timer slack would let the kernel batch the 20 µs
// naps of each child's runtime monitor thread (sysmon), which were about
// a fifth of every child's profile, but 500 µs of it helped in two A/B
// runs of three and hurt in the third, so it stays off (0: the child
// keeps the node's slack) until a quieter measurement says otherwise.
var (
	DefaultPluginProcs = 1
	DefaultNodeProcs   = 1
	DefaultTimerSlack  = time.Duration(0)
)

// Settings are one process's runtime settings.
type Settings struct {
	Procs      int           // GOMAXPROCS; 0: the Go runtime's own choice
	TimerSlack time.Duration // 0: inherited
}

// Env is what a child's environment needs for s (added after the
// inherited environment, so it wins).
func (s Settings) Env() []string {
	if s.Procs <= 0 {
		return nil
	}
	return []string{"GOMAXPROCS=" + strconv.Itoa(s.Procs)}
}

// Getenv reads the environment; tests replace it.
type Getenv func(string) string

// Plugin returns the settings for the plugin child called name (as
// node.toml names it: udp, pnat, socks, ...).
func Plugin(name string, getenv Getenv) (Settings, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var s Settings
	var err error
	if s.Procs, err = pluginProcs(name, getenv); err != nil {
		return s, err
	}
	s.TimerSlack = DefaultTimerSlack
	if v := strings.TrimSpace(getenv(EnvTimerSlack)); v != "" {
		d, err := time.ParseDuration(v)
		if v == "0" {
			d, err = 0, nil
		}
		if err != nil || d < 0 || d > time.Second {
			return s, fmt.Errorf("%s=%q: want a duration from 0 to 1s, e.g. 500us", EnvTimerSlack, v)
		}
		s.TimerSlack = d
	}
	return s, nil
}

func pluginProcs(name string, getenv Getenv) (int, error) {
	v := strings.TrimSpace(getenv(EnvPluginProcs))
	if v == "" {
		if getenv("GOMAXPROCS") != "" {
			return 0, nil // the child inherits the user's
		}
		return DefaultPluginProcs, nil
	}
	bad := func() (int, error) {
		return 0, fmt.Errorf("%s=%q: want a number (every plugin) or NAME=N pairs separated by commas, * for the others, e.g. pnat=2,*=1", EnvPluginProcs, v)
	}
	if !strings.Contains(v, "=") {
		n, ok := procs(v)
		if !ok {
			return bad()
		}
		return n, nil
	}
	def := 0
	if getenv("GOMAXPROCS") == "" {
		def = DefaultPluginProcs
	}
	for _, kv := range strings.Split(v, ",") {
		k, nv, ok := strings.Cut(kv, "=")
		n, nok := procs(nv)
		if !ok || !nok || strings.TrimSpace(k) == "" {
			return bad()
		}
		switch k = strings.TrimSpace(k); {
		case k == name:
			return n, nil
		case k == "*":
			def = n
		}
	}
	return def, nil
}

// procs parses one GOMAXPROCS value: a number from 0 to 1024, or
// "default" (0).
func procs(v string) (int, bool) {
	v = strings.TrimSpace(v)
	if v == "default" {
		return 0, true
	}
	n, err := strconv.Atoi(v)
	return n, err == nil && n >= 0 && n <= 1024
}

// Node returns the node process's own GOMAXPROCS (0: leave Go's).
func Node(getenv Getenv) (int, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	v := strings.TrimSpace(getenv(EnvNodeProcs))
	if v == "" {
		if getenv("GOMAXPROCS") != "" {
			return 0, nil
		}
		return DefaultNodeProcs, nil
	}
	n, ok := procs(v)
	if !ok {
		return 0, fmt.Errorf("%s=%q: want a number from 0 to 1024 (0: Go's choice)", EnvNodeProcs, v)
	}
	return n, nil
}

// ApplyNode sets this process's GOMAXPROCS as Node says for it.
func ApplyNode() error {
	n, err := Node(nil)
	if n > 0 {
		runtime.GOMAXPROCS(n)
	}
	return err
}
