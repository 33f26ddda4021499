// Package localnet is the one launcher of local multi-process Tarzan
// networks: it writes every node's identity and node.toml, starts one
// `tarzan node` process per node (on loopback, or inside a network
// namespace through a command prefix such as `ip netns exec NS`), waits
// until every control API answers and every node knows every peer with
// its mimic links up, reporting progress, and stops the processes
// (SIGTERM, then SIGKILL of the process group after a bound). It tracks
// every process it started, and on failure says what it saw, with the
// end of each lagging node's log.
//
// `tarzan demo`, the test bed of experiment/testbed and cmd/tarzan's
// end-to-end tests all launch their networks with it.
package localnet

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/control"
	"github.com/tarzan-net/tarzan/core/identity"
)

// DefaultStopGrace is how long Stop waits for a node to exit on SIGTERM
// before it kills the node's process group.
const DefaultStopGrace = 5 * time.Second

// Node is one node process of a network.
type Node struct {
	Name   string         // n1, n2, ... (used in progress and errors)
	Dir    string         // node.toml, identity.key, node.log, control.addr
	ID     identity.ID    // its identity
	Config *config.Config // as written to Dir/node.toml
	// Wrap prefixes the node's command line, e.g. {"ip", "netns", "exec",
	// NS}; nil runs `tarzan node` directly.
	Wrap []string
	// HTTP reaches its control API (e.g. dialling inside its namespace);
	// nil means http.DefaultClient.
	HTTP *http.Client
	// Client is its control API, set once the node wrote control.addr.
	Client *control.Client

	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// Addr is the node's main transport address.
func (n *Node) Addr() netip.AddrPort { return n.Config.Transport.Listen }

// Net is a network of node processes.
type Net struct {
	Nodes []*Node
	// Progress receives one line per step (nil: none).
	Progress func(format string, a ...any)
	// StopGrace bounds Stop's wait for each node (0: DefaultStopGrace).
	StopGrace time.Duration
	// JoinedIn is how long WaitJoined waited until every node had joined.
	JoinedIn time.Duration

	mu      sync.Mutex
	started []*Node
}

// Write creates dir/NAME for every configuration (NAME from name(i)), a
// fresh identity key in it, and its node.toml with identity and data
// directory set to that directory. The configurations are kept in the
// returned nodes; nothing is started.
func Write(dir string, cfgs []*config.Config, name func(i int) string) (*Net, error) {
	nw := &Net{}
	for i, cfg := range cfgs {
		n := &Node{Name: name(i), Config: cfg}
		n.Dir = filepath.Join(dir, n.Name)
		if err := os.MkdirAll(n.Dir, 0o700); err != nil {
			return nil, err
		}
		id, err := identity.Generate(rand.Reader)
		if err != nil {
			return nil, err
		}
		if err := id.Save(filepath.Join(n.Dir, "identity.key")); err != nil {
			return nil, err
		}
		n.ID = id.ID()
		cfg.Node.Identity = "identity.key"
		cfg.Node.DataDir = "."
		if err := n.WriteConfig(); err != nil {
			return nil, err
		}
		nw.Nodes = append(nw.Nodes, n)
	}
	return nw, nil
}

// WriteConfig writes n.Config to n.Dir/node.toml again (after a change).
func (n *Node) WriteConfig() error {
	return config.Write(filepath.Join(n.Dir, "node.toml"), n.Config)
}

// LogPath is where the node's stdout and stderr go.
func (n *Node) LogPath() string { return filepath.Join(n.Dir, "node.log") }

// Start starts every node as `[Wrap...] exe node -c DIR/node.toml`, each
// in its own process group (so Stop reaches its plugin children too),
// logging to node.log.
func (nw *Net) Start(exe string) error {
	for _, n := range nw.Nodes {
		if err := nw.start(exe, n); err != nil {
			return err
		}
	}
	return nil
}

func (nw *Net) start(exe string, n *Node) error {
	logf, err := os.OpenFile(n.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	args := append(append([]string{}, n.Wrap...), exe, "node", "-c", filepath.Join(n.Dir, "node.toml"))
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = groupAttr()
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting node %s: %w", n.Name, err)
	}
	n.cmd, n.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(n.done) }()
	nw.started = append(nw.started, n)
	return nil
}

// PID is the node's process ID (0 before Start); it leads its process group.
func (n *Node) PID() int {
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Exited says whether the node's process has ended.
func (n *Node) Exited() bool {
	if n.done == nil {
		return false
	}
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// PIDs are the process IDs of every node started and not yet stopped.
func (nw *Net) PIDs() []int {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	var out []int
	for _, n := range nw.started {
		out = append(out, n.PID())
	}
	return out
}

// Stop stops every node it started: SIGTERM to all, then, for a node
// still running after StopGrace, SIGKILL to its process group; the
// group is killed in any case, so no plugin child outlives its node.
// It closes the nodes' idle control connections. Safe to call twice.
func (nw *Net) Stop() {
	nw.mu.Lock()
	nodes := nw.started
	nw.started = nil
	nw.mu.Unlock()
	grace := nw.StopGrace
	if grace <= 0 {
		grace = DefaultStopGrace
	}
	for _, n := range nodes {
		n.cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.Now().Add(grace)
	for _, n := range nodes {
		select {
		case <-n.done:
		case <-time.After(time.Until(deadline)):
			killGroup(n.PID())
			<-n.done
		}
		killGroup(n.PID())
		if n.HTTP != nil {
			n.HTTP.CloseIdleConnections()
		}
	}
}

func (nw *Net) progress(format string, a ...any) {
	if nw.Progress != nil {
		nw.Progress(format, a...)
	}
}
