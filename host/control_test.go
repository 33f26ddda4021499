package host

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/control"
)

// The control socket is the owner's alone: mode 0600, and gone when the
// node stops.
func TestControlSocketMode(t *testing.T) {
	cfg := testConfig(t)
	h, err := Start(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(cfg.Node.DataDir, control.SocketFile)
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket %s: %v, mode %v; want a socket with mode 0600", sock, err, fi.Mode())
	}
	if _, err := h.Control().Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.Close()
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("control socket left after Close: %v", err)
	}
}

// A TCP control API wants the cookie; requests from a web page (an
// Origin header) or through a foreign name (DNS rebinding: Host
// evil.example) are refused even with it.
func TestControlTCPRefusals(t *testing.T) {
	cfg := testConfig(t)
	cfg.Node.Control = "127.0.0.1:0"
	h, err := Start(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	c, err := control.ClientForDir(cfg.Node.DataDir, nil)
	if err != nil || c.Cookie == "" {
		t.Fatalf("ClientForDir: %+v, %v; want a client with the cookie", c, err)
	}
	if _, err := c.Status(context.Background()); err != nil {
		t.Fatalf("status with the cookie: %v", err)
	}
	fi, err := os.Stat(filepath.Join(cfg.Node.DataDir, control.CookieFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("cookie file: %v, mode %v; want 0600", err, fi.Mode())
	}
	for _, tc := range []struct {
		name, host, origin, cookie string
		want                       int
	}{
		{"no cookie", "", "", "", http.StatusUnauthorized},
		{"wrong cookie", "", "", strings.Repeat("0", 64), http.StatusUnauthorized},
		{"origin", "", "http://evil.example", c.Cookie, http.StatusForbidden},
		{"null origin", "", "null", c.Cookie, http.StatusForbidden},
		{"rebinding", "evil.example:80", "", c.Cookie, http.StatusForbidden},
		{"good", "", "", c.Cookie, http.StatusOK},
		{"localhost", "localhost", "", c.Cookie, http.StatusOK},
	} {
		req, _ := http.NewRequest("GET", "http://"+c.Addr+"/v1/status", nil)
		if tc.host != "" {
			req.Host = tc.host
		}
		if tc.origin != "" {
			req.Header.Set("Origin", tc.origin)
		}
		if tc.cookie != "" {
			req.Header.Set(control.CookieHeader, tc.cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, resp.StatusCode, body, tc.want)
		}
	}
	st, err := c.Status(context.Background())
	if err != nil || st.ControlRefused != 5 {
		t.Errorf("status: control_refused %d, %v; want 5", st.ControlRefused, err)
	}
}

// Another local user (nobody) can neither read the node's status nor
// build a tunnel through it, on the Unix socket or on TCP, even where the
// data directory itself is open to everyone: a child test process runs as
// nobody and tries.
func TestControlOtherUserRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a child as nobody")
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip("no user nobody")
	}
	uid, _ := strconv.Atoi(nobody.Uid)
	gid, _ := strconv.Atoi(nobody.Gid)
	exe := copyExecutable(t)
	for _, listen := range []string{"unix", "127.0.0.1:0"} {
		cfg := testConfig(t)
		cfg.Node.Control = listen
		openToAll(t, cfg.Node.DataDir)
		h, err := Start(context.Background(), cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(exe, "-test.run=^TestControlAsOtherUser$", "-test.v")
		cmd.Env = append(os.Environ(), "TARZAN_OTHER_USER_DIR="+cfg.Node.DataDir, "TARZAN_OTHER_USER_ADDR="+h.ControlAddr().String())
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		out, err := cmd.CombinedOutput()
		h.Close()
		if err != nil || !strings.Contains(string(out), "REFUSED status") || !strings.Contains(string(out), "REFUSED tunnel") {
			t.Fatalf("%s: the child running as nobody: %v\n%s", listen, err, out)
		}
		t.Logf("%s: as nobody:\n%s", listen, grepLines(string(out), "REFUSED"))
	}
}

// TestControlAsOtherUser is the child of TestControlOtherUserRefused: it
// tries every way in it knows and prints REFUSED for each that failed.
func TestControlAsOtherUser(t *testing.T) {
	dir := os.Getenv("TARZAN_OTHER_USER_DIR")
	if dir == "" {
		t.Skip("run by TestControlOtherUserRefused")
	}
	addr := os.Getenv("TARZAN_OTHER_USER_ADDR")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The way the owner's tools go (address and cookie from the data
	// directory), then the address learnt some other way, without cookie.
	clients := []*control.Client{{Addr: addr}}
	if c, err := control.ClientForDir(dir, nil); err == nil {
		clients = append(clients, c)
	} else {
		fmt.Printf("data directory: %v\n", err)
	}
	for _, c := range clients {
		if _, err := c.Status(ctx); err != nil {
			fmt.Printf("REFUSED status via %s: %v\n", c.Addr, err)
		} else {
			t.Errorf("read the status via %s", c.Addr)
		}
		if _, err := c.Tunnel(ctx, control.TunnelRequest{Hops: 1}); err != nil && !strings.Contains(err.Error(), "no eligible") {
			fmt.Printf("REFUSED tunnel via %s: %v\n", c.Addr, err)
		} else {
			t.Errorf("the API took a tunnel request via %s: %v", c.Addr, err)
		}
	}
}

// copyExecutable copies the test binary where nobody can run it.
func copyExecutable(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	openToAll(t, dir)
	src, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(dir, "host.test")
	if err := os.WriteFile(exe, src, 0o755); err != nil {
		t.Fatal(err)
	}
	return exe
}

// openToAll makes dir and its parent (t.TempDir's) world-readable, so
// that only the node's own protections keep other users out.
func openToAll(t *testing.T, dir string) {
	t.Helper()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, "  "+l)
		}
	}
	return strings.Join(out, "\n")
}

// metrics.listen serves /metrics to a scraper on loopback and refuses a
// web page (Origin) and a rebound name (Host); pprof is off unless asked
// for, and then only on the control API.
func TestMetricsListenAndPProf(t *testing.T) {
	cfg := testConfig(t)
	cfg.Metrics.Listen = "127.0.0.1:0"
	h, err := Start(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	get := func(url, host, origin string) (int, string) {
		req, _ := http.NewRequest("GET", url, nil)
		if host != "" {
			req.Host = host
		}
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	url := "http://" + h.MetricsAddr().String() + "/metrics"
	if code, body := get(url, "", ""); code != 200 || !strings.Contains(body, "tarzan_links_up") || !strings.Contains(body, "process_cpu_seconds_total") {
		t.Errorf("GET /metrics: %d\n%.300s", code, body)
	}
	if code, _ := get(url, "", "http://evil.example"); code != http.StatusForbidden {
		t.Errorf("GET /metrics with an Origin: %d, want 403", code)
	}
	if code, _ := get(url, "evil.example", ""); code != http.StatusForbidden {
		t.Errorf("GET /metrics with Host evil.example: %d, want 403", code)
	}
	if _, err := h.Control().Get(context.Background(), "/debug/pprof/"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("pprof with node.pprof off: %v, want 404", err)
	}
	if b, err := h.Control().Get(context.Background(), "/metrics"); err != nil || !strings.Contains(string(b), "tarzan_links_up") {
		t.Errorf("/metrics on the control API: %v", err)
	}
	h.Close()

	cfg = testConfig(t)
	cfg.Node.PProf = true
	if h, err = Start(context.Background(), cfg, Options{}); err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if b, err := h.Control().Get(context.Background(), "/debug/pprof/goroutine?debug=1"); err != nil || !strings.Contains(string(b), "goroutine profile") {
		t.Errorf("pprof with node.pprof on: %v\n%.200s", err, b)
	}
}
