package main

import (
	"strings"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/host/localnet"
)

// The IP service end to end: a SOCKS5 client node, relays and PNAT exits
// as real node processes on loopback (the demo's network), fetching from
// a real HTTP server on loopback. It ran in one process on the wall clock
// before; as processes with generous bounds it does not depend on how
// busy the machine is.
func TestSOCKSFetchThroughTunnel(t *testing.T) {
	server, err := localnet.StartFileServer(fetchTestSize)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	ip, err := localnet.NewIPService(server.Addr)
	if err != nil {
		t.Fatal(err)
	}
	const count = 6
	nw, ctx := startE2ENet(t, count, localnet.Loopback{Cover: "none", IP: ip}, 2*time.Minute, nil)
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
	t.Logf("fetched %d bytes in %.3f s: %.1f Mbit/s", f.Bytes, f.Seconds, f.MBitPerSec)
	for _, n := range nw.Nodes {
		if st, err := n.Client.Status(ctx); err == nil {
			for k, v := range st.Counters {
				if strings.HasPrefix(k, "drop_") && v > 0 {
					t.Logf("%s %s=%d", n.ID.Short(), k, v)
				}
			}
		}
	}
	if !f.SHA256Match {
		t.Fatal("fetched body does not match")
	}
	// The server saw an exit, never the client.
	exitSaw := false
	for _, n := range nw.Nodes[1:] {
		exitSaw = exitSaw || f.ServerSaw == n.Addr().Addr().String()
	}
	if !exitSaw {
		t.Fatalf("server saw %q, want one of the exits' addresses (the client is %s)", f.ServerSaw, nw.Nodes[0].Addr().Addr())
	}
}

// fetchTestSize is the file size of TestSOCKSFetchThroughTunnel; raise it
// to measure throughput.
var fetchTestSize = 1 << 20
