package sidebyside

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// TorMissing is the error when tor or tor-gencert is not on PATH.
var TorMissing = errors.New("tor is not installed: the Tor baseline needs `tor` and `tor-gencert` on PATH " +
	"(Debian/Ubuntu: apt-get install tor); run Tarzan alone with -baseline none")

// LookTor finds tor and tor-gencert on PATH.
func LookTor() (tor, gencert string, err error) {
	if tor, err = exec.LookPath("tor"); err != nil {
		return "", "", TorMissing
	}
	if gencert, err = exec.LookPath("tor-gencert"); err != nil {
		return "", "", TorMissing
	}
	return tor, gencert, nil
}

// TorNet is a private Tor network on loopback: every tor process in its
// own DataDirectory under Dir, tracked until Stop.
type TorNet struct {
	Dir      string
	Nodes    []TorNodeConf
	Progress func(format string, a ...any)
	// BootstrappedIn is how long the client took to reach 100 %.
	BootstrappedIn time.Duration

	tor, gencert string
	mu           sync.Mutex
	procs        []*exec.Cmd
	done         []chan struct{}
}

// StartTor writes and starts the network of plan under dir and waits
// until its client has bootstrapped (ctx bounds the wait). On error it
// has stopped every tor it started.
func StartTor(ctx context.Context, dir string, plan TorPlan, progress func(string, ...any)) (*TorNet, error) {
	if err := plan.Check(); err != nil {
		return nil, err
	}
	tor, gencert, err := LookTor()
	if err != nil {
		return nil, err
	}
	tn := &TorNet{Dir: dir, Progress: progress, tor: tor, gencert: gencert}
	if err := tn.configure(ctx, plan); err != nil {
		return nil, err
	}
	start := time.Now()
	tn.progress("starting a private Tor network: %d authorities, %d exits, %d relays, 1 client in %s",
		plan.Authorities, plan.Exits, plan.Relays, dir)
	for _, n := range tn.Nodes {
		if err := tn.start(n); err != nil {
			tn.Stop()
			return nil, err
		}
	}
	if err := tn.waitBootstrap(ctx); err != nil {
		tn.Stop()
		return nil, err
	}
	tn.BootstrappedIn = time.Since(start)
	tn.progress("tor client bootstrapped in %.1f s", tn.BootstrappedIn.Seconds())
	return tn, nil
}

func (tn *TorNet) progress(format string, a ...any) {
	if tn.Progress != nil {
		tn.Progress(format, a...)
	}
}

// configure assigns ports, creates the authorities' keys, learns every
// fingerprint and writes every torrc.
func (tn *TorNet) configure(ctx context.Context, plan TorPlan) error {
	lo := netip.MustParseAddr("127.0.0.1")
	var auths []TorNodeConf
	roles := plan.Roles()
	ports, err := freeTCPPorts(lo, 2*len(roles))
	if err != nil {
		return err
	}
	for i, role := range roles {
		n := TorNodeConf{Nick: fmt.Sprintf("tz%s%02d", role.String()[:3], i), Role: role, Addr: lo,
			DataDir: filepath.Join(tn.Dir, fmt.Sprintf("tor%02d", i))}
		if err := os.MkdirAll(filepath.Join(n.DataDir, "keys"), 0o700); err != nil {
			return err
		}
		if role == TorClient {
			n.SOCKS, n.Control = ports[2*i], ports[2*i+1]
		} else {
			n.ORPort, n.DirPort = ports[2*i], ports[2*i+1]
		}
		if role == TorAuthority {
			if err := tn.authorityKeys(ctx, &n); err != nil {
				return err
			}
			auths = append(auths, n)
		}
		tn.Nodes = append(tn.Nodes, n)
	}
	for _, n := range tn.Nodes {
		if err := os.WriteFile(filepath.Join(n.DataDir, "geoip-none"), nil, 0o600); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(n.DataDir, "torrc"), []byte(Torrc(n, auths, plan.VotingInterval, plan.torrcExtra()...)), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// authorityKeys runs tor-gencert (v3 identity and signing key) and
// `tor --list-fingerprint` (relay identity) in the node's DataDirectory.
func (tn *TorNet) authorityKeys(ctx context.Context, n *TorNodeConf) error {
	keys := filepath.Join(n.DataDir, "keys")
	cmd := exec.CommandContext(ctx, tn.gencert, "--create-identity-key", "--passphrase-fd", "0", "-m", "12",
		"-a", fmt.Sprintf("%s:%d", n.Addr, n.DirPort),
		"-i", filepath.Join(keys, "authority_identity_key"), "-s", filepath.Join(keys, "authority_signing_key"),
		"-c", filepath.Join(keys, "authority_certificate"))
	cmd.Stdin = strings.NewReader("\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("tor-gencert for %s: %w: %s", n.Nick, err, strings.TrimSpace(string(out)))
	}
	cert, err := os.ReadFile(filepath.Join(keys, "authority_certificate"))
	if err != nil {
		return err
	}
	if n.V3Ident, err = ParseCertFingerprint(string(cert)); err != nil {
		return fmt.Errorf("%s: %w", n.Nick, err)
	}
	cmd = exec.CommandContext(ctx, tn.tor, "--quiet", "--ignore-missing-torrc", "-f", os.DevNull, "--list-fingerprint",
		"--DataDirectory", n.DataDir, "--Nickname", n.Nick, "--ORPort", "1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("tor --list-fingerprint for %s: %w: %s", n.Nick, err, strings.TrimSpace(string(out)))
	}
	f, err := os.Open(filepath.Join(n.DataDir, "fingerprint"))
	if err != nil {
		return err
	}
	defer f.Close()
	if n.Fingerprint, err = ParseFingerprintFile(f); err != nil {
		return fmt.Errorf("%s/fingerprint: %w", n.DataDir, err)
	}
	return nil
}

func (tn *TorNet) start(n TorNodeConf) error {
	logf, err := os.OpenFile(filepath.Join(n.DataDir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(tn.tor, "-f", filepath.Join(n.DataDir, "torrc"))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = groupAttr()
	tn.mu.Lock()
	defer tn.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting tor %s: %w", n.Nick, err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	tn.procs, tn.done = append(tn.procs, cmd), append(tn.done, done)
	return nil
}

// Client is the network's client node.
func (tn *TorNet) Client() TorNodeConf { return tn.Nodes[len(tn.Nodes)-1] }

// SOCKS is the client's SOCKS5 address.
func (tn *TorNet) SOCKS() netip.AddrPort {
	c := tn.Client()
	return netip.AddrPortFrom(c.Addr, c.SOCKS)
}

// PIDs are the process IDs of every tor process still tracked, in the
// order of Nodes.
func (tn *TorNet) PIDs() []int {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	var out []int
	for _, c := range tn.procs {
		out = append(out, c.Process.Pid)
	}
	return out
}

// RelayPID is one exit relay's process (not an authority, not the client).
func (tn *TorNet) RelayPID() int {
	pids := tn.PIDs()
	for i, n := range tn.Nodes {
		if n.Role == TorExit && i < len(pids) {
			return pids[i]
		}
	}
	return 0
}

// exited names the first tor process that has ended, if any.
func (tn *TorNet) exited() string {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	for i, d := range tn.done {
		select {
		case <-d:
			return tn.Nodes[i].Nick
		default:
		}
	}
	return ""
}

// waitBootstrap polls the client's control port until it reports 100 %.
func (tn *TorNet) waitBootstrap(ctx context.Context) error {
	c := tn.Client()
	last := ""
	for {
		if nick := tn.exited(); nick != "" {
			return fmt.Errorf("tor %s exited during bootstrap: %s", nick, tn.tail(nick))
		}
		ctl, err := DialTorControl(ctx, netip.AddrPortFrom(c.Addr, c.Control), filepath.Join(c.DataDir, "control_auth_cookie"))
		if err == nil {
			var phase string
			phase, err = ctl.GetInfo("status/bootstrap-phase")
			ctl.Close()
			if err == nil {
				p, summary, perr := ParseBootstrap(phase)
				if perr != nil {
					return perr
				}
				if p == 100 {
					return nil
				}
				if s := fmt.Sprintf("%d %% (%s)", p, summary); s != last {
					tn.progress("tor client bootstrap: %s", s)
					last = s
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the tor client did not bootstrap (last: %s; %v): %w; its log ends: %s",
				last, err, ctx.Err(), tn.tail(c.Nick))
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// tail is the end of a node's notice log.
func (tn *TorNet) tail(nick string) string {
	for _, n := range tn.Nodes {
		if n.Nick != nick {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(n.DataDir, "notice.log"))
		if len(b) == 0 {
			b, _ = os.ReadFile(filepath.Join(n.DataDir, "stdout.log"))
		}
		if len(b) > 800 {
			b = b[len(b)-800:]
		}
		return strings.TrimSpace(string(b))
	}
	return ""
}

// Control dials the client's control port.
func (tn *TorNet) Control(ctx context.Context) (*TorControl, error) {
	c := tn.Client()
	return DialTorControl(ctx, netip.AddrPortFrom(c.Addr, c.Control), filepath.Join(c.DataDir, "control_auth_cookie"))
}

// Stop ends every tor process it started: SIGTERM (ShutdownWaitLength
// is 0), then SIGKILL of its process group after 5 s. Safe to call twice.
func (tn *TorNet) Stop() {
	tn.mu.Lock()
	procs, done := tn.procs, tn.done
	tn.procs, tn.done = nil, nil
	tn.mu.Unlock()
	for _, c := range procs {
		c.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.Now().Add(5 * time.Second)
	for i, c := range procs {
		select {
		case <-done[i]:
		case <-time.After(time.Until(deadline)):
			killGroup(c.Process.Pid)
			<-done[i]
		}
	}
}

// freeTCPPorts finds n distinct free TCP ports on ip (all held open
// until every one is found, so they differ).
func freeTCPPorts(ip netip.Addr, n int) ([]uint16, error) {
	var out []uint16
	for range n {
		ln, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
		if err != nil {
			return nil, fmt.Errorf("binding %v (loopback must be usable): %w", ip, err)
		}
		defer ln.Close()
		out = append(out, uint16(ln.Addr().(*net.TCPAddr).Port))
	}
	return out, nil
}
