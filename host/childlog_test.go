package host

import (
	"context"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// A refusal the SOCKS adapter decides in its child process (a loopback
// destination never goes through a tunnel) reaches the node's log at
// INFO, with the reason and what to change, like the node's own refusals.
func TestChildRefusalReachesNodeLog(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	socks := ln.Addr().String()
	ln.Close()
	cfg.Adapter.Name = "socks"
	cfg.Adapter.Options = map[string]string{"listen": socks}
	var out syncBuf
	log, level := NewLogger(&out, "text", "info")
	h, err := Start(context.Background(), cfg, Options{Exe: exe, Logger: log, Level: level})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	var rep byte
	deadline := time.Now().Add(30 * time.Second)
	for {
		rep, err = socksConnect(socks, netip.MustParseAddrPort("127.0.0.1:80"))
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil || rep != 0x02 {
		t.Fatalf("SOCKS CONNECT to loopback: reply %#x, %v; want 0x02 (not allowed)", rep, err)
	}
	for !strings.Contains(out.String(), "SOCKS destination refused here") {
		if time.Now().After(deadline) {
			t.Fatalf("the child's refusal is not in the node's log:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if l := out.String(); !strings.Contains(l, "level=INFO") || !strings.Contains(l, "plugin=socks") {
		t.Errorf("the refusal is not an INFO line tagged with the plugin:\n%s", l)
	}
}

// socksConnect makes one SOCKS5 CONNECT (no authentication) to dst
// through the proxy at addr and returns the reply code.
func socksConnect(addr string, dst netip.AddrPort) (byte, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte{5, 1, 0}); err != nil {
		return 0, err
	}
	b := make([]byte, 2)
	if _, err := readFull(c, b); err != nil {
		return 0, err
	}
	a := dst.Addr().As4()
	req := append([]byte{5, 1, 0, 1}, a[:]...)
	req = append(req, byte(dst.Port()>>8), byte(dst.Port()))
	if _, err := c.Write(req); err != nil {
		return 0, err
	}
	r := make([]byte, 10)
	if _, err := readFull(c, r[:2]); err != nil {
		return 0, err
	}
	return r[1], nil
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := c.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
