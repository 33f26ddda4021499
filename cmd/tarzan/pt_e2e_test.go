package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/control"
	"github.com/tarzan-net/tarzan/core/link"
	"github.com/tarzan-net/tarzan/host/localnet"
	"github.com/tarzan-net/tarzan/plugins/transport/pt/ptcap"
)

// A network whose every link runs over obfs4 (Tor's pluggable transport,
// run by the pt transport plugin out of process, as by default): a 3-hop
// tunnel is built and pinged, and a file is fetched through it via
// SOCKS5.
//
// Only node 1's bridge line (its address and obfs4 cert) is handed out,
// as a Tor bridge line is: the nodes join by gossip from node 1 and learn
// every other node's cert from its descriptor (the pt plugin publishes
// its arguments through the Params RPC and takes its peers' through
// SetPeerParams). Links between nodes 2–5 exist only if that works.
//
// Where tcpdump is installed (CI), it captures the obfs4 ports on lo for
// the whole run, and the capture must show none of Tarzan's frame
// structure (plugins/transport/pt/ptcap: no UDP, no plaintext hello, no
// segments opening with the frame length, sizes neither frame-sized nor
// clustered). TARZAN_PT_KEEP=DIR keeps the capture there.
func TestObfs4Network(t *testing.T) {
	if _, err := exec.LookPath("obfs4proxy"); err != nil {
		t.Skip("obfs4proxy not installed (Debian: apt-get install obfs4proxy); skipping the obfs4 network")
	}
	server, err := localnet.StartFileServer(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	ip, err := localnet.NewIPService(server.Addr)
	if err != nil {
		t.Fatal(err)
	}
	const count = 5
	cfgs, err := localnet.Loopback{Cover: "none", Transport: "pt", Discovery: "gossip", IP: ip}.Configs(count)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	peersFile := filepath.Join(dir, "pt-peers")
	for i, cfg := range cfgs {
		if cfg.Transport.InProcess || cfg.Transport.Name != "pt" || len(cfg.Transport.Extra) > 0 {
			t.Fatalf("node %d: transport %+v; want pt alone, out of process", i+1, cfg.Transport)
		}
		cfg.Transport.Options["state_dir"] = filepath.Join(dir, fmt.Sprintf("pt-state-%d", i+1))
		cfg.Transport.Options["peers_file"] = peersFile
	}
	capture := startCapture(t, dir, cfgs)
	nw, err := localnet.Write(dir, cfgs, localnet.NodeName)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nw.Stop)
	if err := nw.Start(tarzanBin); err != nil {
		t.Fatal(err)
	}
	if err := collectBridges(cfgs[:1], peersFile, 30*time.Second); err != nil {
		logTails(t, nw.Nodes)
		t.Fatal(err)
	}
	jctx, jcancel := context.WithTimeout(context.Background(), joinWithin)
	defer jcancel()
	if err := nw.WaitJoined(jctx); err != nil {
		logTails(t, nw.Nodes)
		t.Fatal(err)
	}
	t.Logf("joined in %v from one bridge line", nw.JoinedIn.Round(time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := nw.Nodes[0]
	tun, err := src.Client.Tunnel(ctx, control.TunnelRequest{Hops: 3, Pings: 3, Keep: true})
	if err != nil {
		logTails(t, nw.Nodes)
		t.Fatal(err)
	}
	rep, err := src.Client.PingTunnel(ctx, tun.ID)
	if err != nil {
		t.Fatalf("ping over obfs4: %v", err)
	}
	t.Logf("3-hop tunnel over obfs4 %+v; ping %+v", tun.Hops, rep)
	var f *localnet.FetchResult
	for ctx.Err() == nil {
		if f, err = localnet.FetchViaSOCKS(ctx, ip.SOCKS, server, ip.Alias); err == nil {
			break
		}
		t.Logf("fetch: %v", err)
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		logTails(t, nw.Nodes)
		t.Fatal(err)
	}
	if !f.SHA256Match {
		t.Fatal("fetched body does not match")
	}
	t.Logf("fetched %d bytes over obfs4 in %.3f s: %.1f Mbit/s", f.Bytes, f.Seconds, f.MBitPerSec)
	if capture != nil {
		capture.check(t)
	}
}

// capture is a tcpdump of the obfs4 ports on lo.
type capture struct {
	cmd  *exec.Cmd
	file string
}

// startCapture starts tcpdump on lo for the nodes' PT ports (TCP and
// UDP), or returns nil when tcpdump is not installed. Installed but
// unable to capture is a failure: CI must check.
func startCapture(t *testing.T, dir string, cfgs []*config.Config) *capture {
	bin, err := exec.LookPath("tcpdump")
	if err != nil {
		t.Log("tcpdump not installed: the links' wire format is not checked")
		return nil
	}
	var ports []string
	for _, cfg := range cfgs {
		ports = append(ports, fmt.Sprintf("port %d", cfg.Transport.Listen.Port()))
	}
	c := &capture{file: filepath.Join(dir, "pt.pcap")}
	c.cmd = exec.Command(bin, "-i", "lo", "-n", "-s", "0", "-B", "16384", "-U", "-w", c.file,
		"(tcp or udp) and ("+strings.Join(ports, " or ")+")")
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	t.Cleanup(func() { c.stop() })
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var lines []string
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if strings.Contains(sc.Text(), "listening on") {
				select {
				case ready <- "":
				default:
				}
			}
		}
		select {
		case ready <- strings.Join(lines, "\n"):
		default:
		}
	}()
	select {
	case out := <-ready:
		if out != "" {
			t.Fatalf("tcpdump did not start: %s", out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tcpdump did not start within 10 s")
	}
	return c
}

// stop ends tcpdump (our own child, by PID) so it flushes the file.
func (c *capture) stop() {
	if c.cmd.ProcessState != nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

func (c *capture) check(t *testing.T) {
	t.Helper()
	c.stop()
	if keep := os.Getenv("TARZAN_PT_KEEP"); keep != "" {
		os.WriteFile(filepath.Join(keep, "pt.pcap"), mustRead(t, c.file), 0o644)
	}
	f, err := os.Open(c.file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	segs, err := ptcap.Read(bufio.NewReader(f))
	if err != nil {
		t.Fatal(err)
	}
	r := ptcap.Analyze(segs, link.FrameSize)
	t.Logf("capture of the obfs4 ports: %v", r)
	if err := r.Check(); err != nil {
		t.Fatalf("the obfs4 links show Tarzan's frame structure:\n%v", err)
	}
}

// collectBridges waits for the bridge file of each of cfgs and writes
// them all to the peers file the nodes read.
func collectBridges(cfgs []*config.Config, peersFile string, within time.Duration) error {
	deadline := time.Now().Add(within)
	var lines []string
	for _, cfg := range cfgs {
		file := filepath.Join(cfg.Transport.Options["state_dir"], "bridge")
		for {
			b, err := os.ReadFile(file)
			if err == nil && strings.HasSuffix(string(b), "\n") {
				lines = append(lines, string(b))
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("no bridge file %s within %v", file, within)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return os.WriteFile(peersFile, []byte(strings.Join(lines, "")), 0o600)
}

func mustRead(t *testing.T, f string) []byte {
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
