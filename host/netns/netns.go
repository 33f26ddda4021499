// Package netns creates Linux network namespaces and veth pairs, runs
// processes inside them with tracked PIDs, and removes all of it again:
// on Close, and — for a run that was killed before it could clean up —
// through RemoveStale on the next run.
//
// Every namespace a Set creates is named PREFIX + PID + TAG + "-" + NAME,
// where PREFIX is the caller's (e.g. "tzb" for the side-by-side benches,
// "tztb" for the traffic-analysis test bed) and PID the process ID of the
// runner, so concurrent runs never collide and RemoveStale recognises a
// dead runner's namespaces by its PID. Traffic between namespaces stays
// inside them.
//
// It needs root and the `ip` command (iproute2).
package netns

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
)

// Dir is where `ip netns` keeps its names.
const Dir = "/var/run/netns"

// Check reports what this machine lacks for namespaces: root, the ip
// command, namespace support.
func Check() error {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (network namespaces): run it as root, e.g. with sudo")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		missing = append(missing, "the ip command (apt-get install iproute2)")
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		missing = append(missing, "network namespaces (/proc/self/ns/net)")
	}
	if len(missing) > 0 {
		return fmt.Errorf("needs %s", strings.Join(missing, "; "))
	}
	return nil
}

// IP runs `ip ARGS...` and returns its error with ip's own message.
func IP(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "ip", args...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return nil
}

// Do runs fn on an OS thread that has entered network namespace ns:
// sockets fn creates (listeners, dialled connections) belong to ns and
// stay there whichever thread later uses them. The thread is never
// handed back to the Go scheduler; it exits with the goroutine.
func Do(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread: a locked goroutine that returns takes its
		// thread with it, so no other goroutine ever runs in ns.
		f, err := os.Open(filepath.Join(Dir, ns))
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := setns(int(f.Fd())); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Dial dials addr from inside namespace ns.
func Dial(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := Do(ns, func() error {
		var err error
		c, err = (&net.Dialer{}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// Listen listens on addr inside namespace ns.
func Listen(ns, network, addr string) (net.Listener, error) {
	var l net.Listener
	err := Do(ns, func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

// Proc is a process a Set started, in its own process group.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	done chan struct{}
}

// PID is the process's ID; it leads its process group.
func (p *Proc) PID() int { return p.Cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited says whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop signals p (sig), waits up to grace, then kills its whole process
// group. It reports whether p exited on sig.
func (p *Proc) Stop(sig syscall.Signal, grace time.Duration) bool {
	if p.Exited() {
		return true
	}
	p.Cmd.Process.Signal(sig)
	clean := true
	select {
	case <-p.done:
	case <-time.After(grace):
		clean = false
		kill(-p.PID(), syscall.SIGKILL)
		<-p.done
	}
	// Children that outlive their parent (plugins) are in its group.
	kill(-p.PID(), syscall.SIGKILL)
	return clean
}

// Set is the namespaces and processes of one run, removed by Close.
type Set struct {
	prefix string
	mu     sync.Mutex
	nses   []string
	procs  []*Proc
}

// NewSet returns an empty set whose namespaces are named
// prefix + PID + tag + "-" + NAME. prefix must not contain digits at its
// end (RemoveStale reads the PID that follows it); tag is free text such
// as "r1" (a run number), or "".
func NewSet(prefix, tag string) *Set {
	return &Set{prefix: fmt.Sprintf("%s%d%s-", prefix, os.Getpid(), tag)}
}

// Prefix is what every namespace name of the set starts with.
func (s *Set) Prefix() string { return s.prefix }

// Add creates namespace Prefix()+name with loopback up and returns its
// full name.
func (s *Set) Add(ctx context.Context, name string) (string, error) {
	ns := s.prefix + name
	if err := IP(ctx, "netns", "add", ns); err != nil {
		return "", err
	}
	s.mu.Lock()
	s.nses = append(s.nses, ns)
	s.mu.Unlock()
	return ns, IP(ctx, "-n", ns, "link", "set", "lo", "up")
}

// Namespaces are the set's namespaces, in creation order.
func (s *Set) Namespaces() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.nses...)
}

// Veth joins namespaces a and b by a veth pair (interface aIf in a, bIf
// in b), gives each side its address (a prefix such as "10.0.0.1/30";
// "" for none) and brings both up.
func Veth(ctx context.Context, a, aIf, aAddr, b, bIf, bAddr string) error {
	steps := [][]string{{"link", "add", aIf, "netns", a, "type", "veth", "peer", "name", bIf, "netns", b}}
	if aAddr != "" {
		steps = append(steps, []string{"-n", a, "addr", "add", aAddr, "dev", aIf})
	}
	if bAddr != "" {
		steps = append(steps, []string{"-n", b, "addr", "add", bAddr, "dev", bIf})
	}
	steps = append(steps, []string{"-n", a, "link", "set", aIf, "up"}, []string{"-n", b, "link", "set", bIf, "up"})
	for _, st := range steps {
		if err := IP(ctx, st...); err != nil {
			return err
		}
	}
	return nil
}

// Start runs `ip netns exec NS ARGS...` in its own process group, its
// output appended to logPath. `ip netns exec` execs ARGS, so the Proc's
// PID is the command's own.
func (s *Set) Start(name, ns, logPath string, args ...string) (*Proc, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = groupAttr()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	s.procs = append(s.procs, p)
	return p, nil
}

// Close stops every process (SIGTERM, then SIGKILL of its group), kills
// whatever is still inside the namespaces (started by us: plugin
// children, by PID), and deletes the namespaces, which removes their
// veths, bridges and TUN devices. It returns what it could not remove.
// Safe to call more than once.
func (s *Set) Close() []string {
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
			p.Stop(syscall.SIGTERM, 5*time.Second)
		}()
	}
	wg.Wait()
	for _, ns := range nses {
		KillPids(ns)
	}
	for i := len(nses) - 1; i >= 0; i-- {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := IP(ctx, "netns", "del", nses[i]); err != nil {
			problems = append(problems, err.Error())
		}
		cancel()
	}
	return problems
}

// Pids are the processes inside namespace ns.
func Pids(ns string) []int {
	out, err := exec.Command("ip", "netns", "pids", ns).Output()
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// KillPids SIGKILLs every process inside namespace ns.
func KillPids(ns string) {
	for _, pid := range Pids(ns) {
		kill(pid, syscall.SIGKILL)
	}
}

// RemoveStale deletes the namespaces named prefix + PID + ... whose
// runner PID is gone (killed before it could clean up), killing what
// still runs in them, and returns their names.
func RemoveStale(prefix string) []string {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return nil
	}
	var removed []string
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], prefix) {
			continue
		}
		name := f[0]
		pid, ok := stalePID(name, prefix)
		if !ok || pid == os.Getpid() || kill(pid, 0) == nil {
			continue // not ours, ours, or its runner is alive
		}
		KillPids(name)
		if exec.Command("ip", "netns", "del", name).Run() == nil {
			removed = append(removed, name)
		}
	}
	return removed
}

// stalePID reads the runner PID that follows prefix in a namespace name.
func stalePID(name, prefix string) (int, bool) {
	digits := strings.TrimPrefix(name, prefix)
	end := strings.IndexFunc(digits, func(r rune) bool { return r < '0' || r > '9' })
	if end <= 0 {
		return 0, false
	}
	pid, err := strconv.Atoi(digits[:end])
	return pid, err == nil
}

// Sysctl sets a per-namespace sysctl inside ns, e.g.
// Sysctl(ns, "net/ipv4/ping_group_range", "0 2147483647") (new
// namespaces start with the kernel's defaults, not the host's values).
func Sysctl(ns, key, value string) error {
	return Do(ns, func() error {
		// /proc/sys/net shows the namespace of the thread that opens it.
		return os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644)
	})
}
