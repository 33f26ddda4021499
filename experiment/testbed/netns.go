package testbed

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Network namespaces, the processes started in them, and their cleanup.
//
// Every name this package creates starts with namePrefix followed by the
// process ID of the runner, so that runs never collide and a run that was
// killed before it could clean up is recognised (and removed) by the next
// one: its PID is dead.

const (
	namePrefix = "tztb"
	netnsDir   = "/var/run/netns" // where `ip netns` keeps its names
)

// runIP runs `ip ARGS...` and returns its error with ip's own message.
func runIP(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "ip", args...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return nil
}

// inNetns runs fn on an OS thread that has entered network namespace ns:
// sockets fn creates (listeners, dialled connections) belong to ns and
// stay there whichever thread later uses them. The thread is never
// handed back to the Go scheduler; it exits with the goroutine.
func inNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: a locked goroutine that returns takes its
		// thread with it, so no other goroutine ever runs in ns.
		f, err := os.Open(filepath.Join(netnsDir, ns))
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// dialIn dials addr from inside namespace ns.
func dialIn(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNetns(ns, func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// listenIn listens on addr inside namespace ns.
func listenIn(ns, network, addr string) (net.Listener, error) {
	var l net.Listener
	err := inNetns(ns, func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// proc is a process the test bed started, in its own process group.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop signals p (sig), waits up to grace, then kills its whole process
// group. It reports whether p exited on sig.
func (p *proc) stop(sig syscall.Signal, grace time.Duration) bool {
	if p.exited() {
		return true
	}
	p.cmd.Process.Signal(sig)
	clean := true
	select {
	case <-p.done:
	case <-time.After(grace):
		clean = false
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	// Children that outlive their parent (plugins) are in its group.
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	return clean
}

// netnsSet is the namespaces and processes of one test bed, cleaned up
// by close.
type netnsSet struct {
	prefix string
	mu     sync.Mutex
	nses   []string
	procs  []*proc
}

func newNetnsSet(run int) *netnsSet {
	return &netnsSet{prefix: fmt.Sprintf("%s%dr%d-", namePrefix, os.Getpid(), run)}
}

// add creates namespace prefix+name with loopback up.
func (s *netnsSet) add(ctx context.Context, name string) (string, error) {
	ns := s.prefix + name
	if err := runIP(ctx, "netns", "add", ns); err != nil {
		return "", err
	}
	s.mu.Lock()
	s.nses = append(s.nses, ns)
	s.mu.Unlock()
	return ns, runIP(ctx, "-n", ns, "link", "set", "lo", "up")
}

// start runs `ip netns exec NS ARGS...` in its own process group, its
// output appended to logPath.
func (s *netnsSet) start(name, ns, logPath string, args ...string) (*proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	s.procs = append(s.procs, p)
	return p, nil
}

// close stops every process (SIGTERM, then SIGKILL of its group), kills
// whatever is still inside the namespaces (started by us: plugin
// children, by PID), and deletes the namespaces, which removes their
// veths and the bridge. Safe to call more than once.
func (s *netnsSet) close() []string {
	s.mu.Lock()
	procs, nses := s.procs, s.nses
	s.procs, s.nses = nil, nil
	s.mu.Unlock()
	var problems []string
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.stop(syscall.SIGTERM, 5*time.Second)
		}()
	}
	wg.Wait()
	for _, ns := range nses {
		killNetnsPids(ns)
	}
	for i := len(nses) - 1; i >= 0; i-- {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := runIP(ctx, "netns", "del", nses[i]); err != nil {
			problems = append(problems, err.Error())
		}
		cancel()
	}
	return problems
}

// killNetnsPids SIGKILLs every process inside namespace ns.
func killNetnsPids(ns string) {
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// removeStale deletes the namespaces of earlier test bed runs whose
// runner process is gone (killed before it could clean up), and returns
// their names.
func removeStale() []string {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return nil
	}
	var removed []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], namePrefix) {
			continue
		}
		name := f[0]
		digits := strings.TrimPrefix(name, namePrefix)
		end := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' })
		if end <= 0 {
			continue
		}
		pid, err := strconv.Atoi(digits[:end])
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue // ours, or its runner is alive
		}
		killNetnsPids(name)
		if exec.Command("ip", "netns", "del", name).Run() == nil {
			removed = append(removed, name)
		}
	}
	return removed
}
