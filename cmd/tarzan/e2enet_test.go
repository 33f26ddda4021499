package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/config"
)

// startE2ENet writes count demo nodes (node i on 127.i+1.0.1) under a
// test directory, lets edit (if not nil) change each node's configuration, starts
// them as real `tarzan node` processes (stopped when the test ends) and
// waits until every node answers its control API, knows every peer and
// has its mimic links up. The context it returns is bounded by limit and
// cancelled when the test ends.
func startE2ENet(t *testing.T, count int, opts demoOptions, limit time.Duration, edit func(i int, cfg *config.Config)) ([]*demoNode, context.Context) {
	t.Helper()
	ns, err := writeDemoNet(t.TempDir(), count, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range ns {
		if edit == nil {
			break
		}
		path := filepath.Join(n.dir, "node.toml")
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		edit(i, cfg)
		if err := config.Write(path, cfg); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { stopDemoNodes(ns) })
	if err := launchNodes(tarzanBin, ns); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	quiet := func(string, ...any) {}
	if err := waitControl(ctx, ns, quiet); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := waitMembership(ctx, ns, quiet); err != nil {
		logTails(t, ns)
		t.Fatal(err)
	}
	t.Logf("%d nodes learned every peer and linked their mimics in %v", count, time.Since(start).Round(10*time.Millisecond))
	return ns, ctx
}

// logTails logs the end of each node's log.
func logTails(t *testing.T, ns []*demoNode) {
	t.Helper()
	for _, n := range ns {
		b, _ := os.ReadFile(filepath.Join(n.dir, "node.log"))
		t.Logf("log of %s:\n%s", n.id.Short(), tail(string(b), 15))
	}
}
