package main

import (
	"context"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/config"
	"github.com/tarzan-net/tarzan/host/localnet"
)

// joinWithin bounds how long the end-to-end tests wait for a network to
// join. It is generous on purpose: on a loaded machine node processes
// start and converge slowly, and a test of the protocol must not fail
// for it. A failure says what was seen (localnet.Net.WaitJoined).
const joinWithin = 3 * time.Minute

// writeE2ENet writes count loopback nodes of shape o (node i on
// 127.i+1.0.1) under a test directory, edit (if not nil) changing each
// node's configuration first. Nothing is started.
func writeE2ENet(t *testing.T, count int, o localnet.Loopback, edit func(i int, cfg *config.Config)) *localnet.Net {
	t.Helper()
	cfgs, err := o.Configs(count)
	if err != nil {
		t.Fatal(err)
	}
	for i, cfg := range cfgs {
		if edit != nil {
			edit(i, cfg)
		}
	}
	nw, err := localnet.Write(t.TempDir(), cfgs, localnet.NodeName)
	if err != nil {
		t.Fatal(err)
	}
	return nw
}

// startE2ENet writes the network as writeE2ENet does, starts the nodes as
// real `tarzan node` processes (stopped when the test ends) and waits, at
// most joinWithin, until every node answers its control API, knows every
// peer and has its mimic links up. The context it returns is bounded by
// limit from then on and cancelled when the test ends.
func startE2ENet(t *testing.T, count int, o localnet.Loopback, limit time.Duration, edit func(i int, cfg *config.Config)) (*localnet.Net, context.Context) {
	t.Helper()
	nw := writeE2ENet(t, count, o, edit)
	t.Cleanup(nw.Stop)
	if err := nw.Start(tarzanBin); err != nil {
		t.Fatal(err)
	}
	jctx, jcancel := context.WithTimeout(context.Background(), joinWithin)
	defer jcancel()
	start := time.Now()
	if err := nw.WaitJoined(jctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d nodes learned every peer and linked their mimics in %v", count, time.Since(start).Round(10*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	return nw, ctx
}

// logTails logs the end of each node's log.
func logTails(t *testing.T, ns []*localnet.Node) {
	t.Helper()
	for _, n := range ns {
		t.Logf("log of %s (%s):\n%s", n.Name, n.ID.Short(), n.LogTail(15))
	}
}
