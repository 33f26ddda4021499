package pt

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// startTimeout bounds how long a PT child may take to report its methods.
const startTimeout = 15 * time.Second

// proxy is the configuration of one managed PT child (pt-spec v1): a
// client (it opens a SOCKS5 port per method) or a server (it listens on
// bind and forwards decoded streams to orPort).
type proxy struct {
	bin      string
	method   string
	stateDir string
	server   bool
	bind     netip.AddrPort // server: where the PT listens
	orPort   netip.AddrPort // server: where it forwards to
	options  string         // server: TOR_PT_SERVER_TRANSPORT_OPTIONS (k=v;k=v, without the method prefix)
	log      *slog.Logger
}

// method is what a PT child reported for our method: a SOCKS5 address
// (client) or the listening address and ARGS (server).
type method struct {
	addr netip.AddrPort
	args string // SMETHOD ARGS, as printed (k=v,k=v, escaped)
}

// child is one running PT process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan struct{} // closed once the process is reaped
	wg    sync.WaitGroup
}

func (p *proxy) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TOR_PT_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"TOR_PT_MANAGED_TRANSPORT_VER=1",
		"TOR_PT_STATE_LOCATION="+p.stateDir,
		"TOR_PT_EXIT_ON_STDIN_CLOSE=1",
	)
	if p.server {
		env = append(env,
			"TOR_PT_SERVER_TRANSPORTS="+p.method,
			"TOR_PT_SERVER_BINDADDR="+p.method+"-"+p.bind.String(),
			"TOR_PT_ORPORT="+p.orPort.String(),
		)
		if p.options != "" {
			var opts []string
			for _, kv := range strings.Split(p.options, ";") {
				if kv = strings.TrimSpace(kv); kv != "" {
					opts = append(opts, p.method+":"+kv)
				}
			}
			env = append(env, "TOR_PT_SERVER_TRANSPORT_OPTIONS="+strings.Join(opts, ";"))
		}
	} else {
		env = append(env, "TOR_PT_CLIENT_TRANSPORTS="+p.method)
	}
	return env
}

// start runs the PT child and waits until it has reported its methods.
// The child exits when stop is called (its stdin is closed, then it is
// killed) or when it dies on its own; done is closed in both cases.
func (p *proxy) start() (*child, method, error) {
	cmd := exec.Command(p.bin)
	cmd.Env = p.env()
	cmd.Dir = p.stateDir
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, method{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, method{}, err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, method{}, err
	}
	if err := cmd.Start(); err != nil {
		return nil, method{}, fmt.Errorf("pt: start %s: %w", p.bin, err)
	}
	c := &child{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	role := "client"
	if p.server {
		role = "server"
	}
	log := p.log.With("pt", p.method, "role", role, "pid", cmd.Process.Pid)
	c.wg.Add(1)
	go func() { // stderr at debug level
		defer c.wg.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.Debug("pt stderr", "line", sc.Text())
		}
	}()
	got := make(chan result, 1)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		p.readStdout(stdout, log, got)
	}()
	go func() { // reaper: the stdout/stderr readers end when the pipes close
		c.wg.Wait()
		cmd.Wait()
		close(c.done)
	}()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case r := <-got:
		if r.err != nil {
			c.stop()
			return nil, method{}, r.err
		}
		return c, r.m, nil
	case <-timer.C:
		c.stop()
		return nil, method{}, fmt.Errorf("pt: %s did not report its %s methods within %v", p.bin, role, startTimeout)
	}
}

type result struct {
	m   method
	err error
}

// readStdout parses the PT's configuration protocol; the first outcome
// (methods done or an error) goes to got, later lines to the debug log.
func (p *proxy) readStdout(r io.Reader, log *slog.Logger, got chan<- result) {
	sc := bufio.NewScanner(r)
	var m method
	found, sent := false, false
	send := func(res result) {
		if !sent {
			sent = true
			got <- res
		}
	}
	for sc.Scan() {
		line := sc.Text()
		if sent {
			log.Debug("pt stdout", "line", line)
			continue
		}
		res, done := p.parseLine(line, &m, &found)
		if done {
			send(res)
		}
	}
	send(result{err: fmt.Errorf("pt: %s exited before reporting its methods", p.bin)})
}

// parseLine handles one configuration line; done says the outcome is known.
func (p *proxy) parseLine(line string, m *method, found *bool) (result, bool) {
	kw, rest, _ := strings.Cut(line, " ")
	fail := func(format string, a ...any) (result, bool) {
		return result{err: fmt.Errorf("pt: "+format, a...)}, true
	}
	switch kw {
	case "VERSION":
		if rest != "1" {
			return fail("%s speaks PT version %q; want 1", p.bin, rest)
		}
	case "VERSION-ERROR", "ENV-ERROR", "PROXY-ERROR":
		return fail("%s: %s", kw, rest)
	case "CMETHOD-ERROR", "SMETHOD-ERROR":
		return fail("%s: %s", kw, rest)
	case "CMETHOD", "SMETHOD":
		f := strings.Fields(rest)
		if len(f) == 0 || f[0] != p.method {
			return result{}, false
		}
		ap := ""
		if kw == "CMETHOD" {
			if len(f) < 3 || f[1] != "socks5" {
				return fail("CMETHOD %q: want %s socks5 ADDR", rest, p.method)
			}
			ap = f[2]
		} else {
			if len(f) < 2 {
				return fail("SMETHOD %q: no address", rest)
			}
			ap = f[1]
			for _, o := range f[2:] {
				if a, ok := strings.CutPrefix(o, "ARGS:"); ok {
					m.args = a
				}
			}
		}
		addr, err := netip.ParseAddrPort(ap)
		if err != nil {
			return fail("%s address %q: %v", kw, ap, err)
		}
		m.addr, *found = addr, true
	case "CMETHODS", "SMETHODS":
		if rest != "DONE" {
			return result{}, false
		}
		if !*found {
			return fail("%s reported no %s method %q", p.bin, strings.ToLower(kw[:1]), p.method)
		}
		return result{m: *m}, true
	}
	return result{}, false
}

// stop asks the child to exit (stdin closed, per TOR_PT_EXIT_ON_STDIN_CLOSE),
// kills it if it has not after a moment, and waits for it.
func (c *child) stop() {
	c.stdin.Close()
	select {
	case <-c.done:
		return
	case <-time.After(500 * time.Millisecond):
	}
	c.cmd.Process.Kill()
	<-c.done
}

// supervised keeps one PT child running: it restarts the child with
// back-off when it dies, and publishes the current method.
type supervised struct {
	p    *proxy
	mu   sync.Mutex
	cur  method
	c    *child
	quit chan struct{}
	wg   sync.WaitGroup
	// restarts counts children started after the first.
	restarts func()
}

func newSupervised(p *proxy, restarts func()) (*supervised, error) {
	c, m, err := p.start()
	if err != nil {
		return nil, err
	}
	s := &supervised{p: p, cur: m, c: c, quit: make(chan struct{}), restarts: restarts}
	if p.server && p.bind.Port() == 0 {
		// Restart on the same port, so our address stays what we advertised.
		p.bind = netip.AddrPortFrom(p.bind.Addr(), m.addr.Port())
	}
	s.wg.Add(1)
	go s.watch()
	return s, nil
}

func (s *supervised) method() method {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

func (s *supervised) watch() {
	defer s.wg.Done()
	backoff := 100 * time.Millisecond
	for {
		s.mu.Lock()
		c := s.c
		s.mu.Unlock()
		select {
		case <-s.quit:
			return
		case <-c.done:
		}
		s.p.log.Warn("pt child exited; restarting", "pt", s.p.method, "server", s.p.server, "err", c.cmd.ProcessState, "after", backoff)
		for {
			select {
			case <-s.quit:
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			nc, m, err := s.p.start()
			if err != nil {
				s.p.log.Warn("pt child restart failed", "pt", s.p.method, "err", err)
				continue
			}
			s.mu.Lock()
			s.c, s.cur = nc, m
			s.mu.Unlock()
			s.restarts()
			backoff = 100 * time.Millisecond
			break
		}
	}
}

// kill stops the child for good.
func (s *supervised) kill() {
	close(s.quit)
	s.wg.Wait()
	s.mu.Lock()
	c := s.c
	s.mu.Unlock()
	c.stop()
}

// errNoArgs is returned when no PT arguments are known for a peer.
var errNoArgs = errors.New("pt: no PT arguments known for this peer (set them in the peers option, peers_file, or from its descriptor)")
