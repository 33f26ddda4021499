package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tarzan-net/tarzan/core/node/nodetest"
)

// tunnelCLI runs `tarzan tunnel ARGS` against s.
func tunnelCLI(t *testing.T, s *Server, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	cli := &CLI{Out: &out, Err: &errb, Dial: func(cfg, a, cookie string) (*Client, error) {
		return inMemory(s), nil
	}, Interrupt: func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }}
	err := cli.RunTunnel(args)
	return out.String() + errb.String(), err
}

// The tunnel commands against a real node (in-process, on an in-memory
// network, its API on a Unix socket): build prints the number, hops and
// setup time; list shows it as kept; ping pings every hop -c times and
// prints statistics; close closes it; an unknown ID and a tunnel that is
// not the API's get clear errors.
func TestTunnelCommands(t *testing.T) { synctest.Test(t, testTunnelCommands) }

func testTunnelCommands(t *testing.T) {
	tn := nodetest.Start(t, nodetest.Config{Nodes: 6, K: 3})
	s := &Server{Node: tn.Nodes[0], Started: time.Now()}
	a := s

	out, err := tunnelCLI(t, a, "build", "-hops", "3")
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`^tunnel (\d+) built in [0-9.]+ ms through 3 hops\n`).FindStringSubmatch(out)
	if m == nil || strings.Count(out, "\n") < 5 {
		t.Fatalf("build printed:\n%s\nwant the tunnel's number, setup time and a line per hop", out)
	}
	id := m[1]
	num, _ := strconv.ParseUint(id, 10, 64)
	hops := s.Node.TunnelByNumber(num).HopIDs()
	for _, h := range hops {
		if !strings.Contains(out, h.Short()) {
			t.Errorf("build output names no hop %s:\n%s", h.Short(), out)
		}
	}

	out, err = tunnelCLI(t, a, "list")
	if err != nil || !regexp.MustCompile(`(?m)^`+id+` +kept +`+hops[0].Short()+`>`).MatchString(out) {
		t.Fatalf("list: %v\n%s\nwant tunnel %s as kept", err, out, id)
	}
	out, err = tunnelCLI(t, a, "list", "-json")
	var l TunnelList
	if err != nil || json.Unmarshal([]byte(out), &l) != nil || len(l.Tunnels) != 1 || l.Tunnels[0].ID != id || len(l.Tunnels[0].Hops) != 3 {
		t.Fatalf("list -json: %v\n%s", err, out)
	}

	out, err = tunnelCLI(t, a, "ping", "-c", "2", "-i", "0", id)
	if err != nil || strings.Count(out, "seq=") != 2 || strings.Count(out, "2 sent, 2 received, 0% loss") != 3 {
		t.Fatalf("ping -c 2: %v\n%s\nwant two rounds and statistics for three hops", err, out)
	}
	out, err = tunnelCLI(t, a, "ping", "-json", "-c", "3", "-i", "0", id)
	var pr PingResult
	if err != nil || json.Unmarshal([]byte(out), &pr) != nil || len(pr.Rounds) != 3 || len(pr.Hops) != 3 || pr.Hops[2].Received != 3 || pr.Hops[2].MinMS > pr.Hops[2].MaxMS {
		t.Fatalf("ping -json: %v\n%s", err, out)
	}

	if out, err = tunnelCLI(t, a, "ping", "-i", "0", "99"); err == nil || !strings.Contains(err.Error(), "no open tunnel 99") {
		t.Fatalf("ping of an unknown tunnel: %v\n%s", err, out)
	}
	if _, err = tunnelCLI(t, a, "build", "-path", "zz,yy"); err == nil || !strings.Contains(err.Error(), "path hop 1") {
		t.Fatalf("build along a malformed path: %v", err)
	}
	if _, err = tunnelCLI(t, a, "build", "-hops", "9"); err == nil || !strings.Contains(err.Error(), "1 to 4 hops") {
		t.Fatalf("build of 9 hops: %v", err)
	}
	if _, err = tunnelCLI(t, a, "close", "x1"); err == nil || !strings.Contains(err.Error(), "no tunnel ID") {
		t.Fatalf("close of a malformed ID: %v", err)
	}
	// A tunnel the API did not keep (here: the node's own) is not the
	// API's to close.
	other, err := s.Node.BuildTunnel(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	otherID := itoa(other.Number())
	if _, err = tunnelCLI(t, a, "close", otherID); err == nil || !strings.Contains(err.Error(), "only kept tunnels") {
		t.Fatalf("close of a tunnel not kept: %v", err)
	}
	if out, err = tunnelCLI(t, a, "ping", "-c", "1", otherID); err != nil {
		t.Fatalf("ping of an open tunnel the API did not build: %v\n%s", err, out)
	}

	out, err = tunnelCLI(t, a, "close", id)
	if err != nil || out != "closed tunnel "+id+"\n" {
		t.Fatalf("close: %v\n%s", err, out)
	}
	if _, err = tunnelCLI(t, a, "close", id); err == nil || !strings.Contains(err.Error(), "no open tunnel "+id) {
		t.Fatalf("second close: %v", err)
	}
	l2, err := inMemory(s).Tunnels(context.Background())
	if err != nil || len(l2.Tunnels) != 1 || l2.Tunnels[0].ID != otherID || l2.Tunnels[0].Role != RoleAPI || l2.Totals.Built != 2 {
		t.Fatalf("after close: %+v, %v; want only tunnel %s, 2 built", l2, err, otherID)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// inMemory is a client of s that calls its handler directly, with no
// socket: the multi-node test runs in a synctest bubble, on its virtual
// clock (docs/DECISIONS.md D32).
func inMemory(s *Server) *Client {
	h := s.Handler()
	return &Client{Addr: "127.0.0.1:1", HTTP: &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		return rec.Result(), nil
	})}}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A node that is not running: the data directory has no control
// address, or the address recorded answers no more.
func TestTunnelCommandsNodeNotRunning(t *testing.T) {
	dir := t.TempDir()
	cli := &CLI{Out: new(bytes.Buffer), Err: new(bytes.Buffer), Dial: func(string, string, string) (*Client, error) {
		return ClientForDir(dir, nil)
	}}
	if err := cli.RunTunnel([]string{"list"}); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("list with no control.addr: %v, want ErrNotRunning", err)
	}
	cli.Dial = func(string, string, string) (*Client, error) {
		return &Client{Addr: UnixPrefix + filepath.Join(dir, SocketFile)}, nil
	}
	if err := cli.RunTunnel([]string{"list"}); !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("list with a dead socket: %v, want ErrNoAnswer", err)
	}
	if err := cli.RunTunnel([]string{"list", "extra"}); !errors.Is(err, ErrUsage) {
		t.Fatalf("list with an argument: %v, want ErrUsage", err)
	}
}
