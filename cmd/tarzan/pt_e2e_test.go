package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/control"
	"github.com/tarzan-net/tarzan/host/localnet"
)

// A network whose every link runs over obfs4 (Tor's pluggable transport,
// run by the pt transport plugin as a managed child): a 3-hop tunnel is
// built and pinged, and a file is fetched through it via SOCKS5.
//
// Each node's PT state (obfs4's keys) lives in its own directory, and the
// nodes learn each other's obfs4 bridge arguments (cert, iat-mode) from a
// peers file collected from the bridge files the plugins write once they
// listen. TARZAN_PT_KEEP=DIR keeps the network's directory there (for a
// packet capture alongside).
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
	cfgs, err := localnet.Loopback{Cover: "none", Transport: "pt", IP: ip}.Configs(count)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	peersFile := filepath.Join(dir, "pt-peers")
	for i, cfg := range cfgs {
		cfg.Transport.Options["state_dir"] = filepath.Join(dir, fmt.Sprintf("pt-state-%d", i+1))
		cfg.Transport.Options["peers_file"] = peersFile
	}
	nw, err := localnet.Write(dir, cfgs, localnet.NodeName)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nw.Stop)
	if err := nw.Start(tarzanBin); err != nil {
		t.Fatal(err)
	}
	if err := collectBridges(cfgs, peersFile, 30*time.Second); err != nil {
		logTails(t, nw.Nodes)
		t.Fatal(err)
	}
	jctx, jcancel := context.WithTimeout(context.Background(), joinWithin)
	defer jcancel()
	if err := nw.WaitJoined(jctx); err != nil {
		logTails(t, nw.Nodes)
		t.Fatal(err)
	}
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
	if keep := os.Getenv("TARZAN_PT_KEEP"); keep != "" {
		os.WriteFile(filepath.Join(keep, "pt-peers"), mustRead(t, peersFile), 0o644)
	}
}

// collectBridges waits for every node's bridge file and writes them all
// to the peers file the nodes read.
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
