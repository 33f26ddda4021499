package control

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Kept tunnels are bounded: past MaxKept a request to keep one more is
// refused with 429 and a message that says what to do, before any build.
func TestKeptTunnelsBounded(t *testing.T) {
	s := &Server{MaxKept: 1} // no node: the refusal comes before any use of it
	addr, err := s.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !s.reserveKept() {
		t.Fatal("first place refused")
	}
	_, err = (&Client{Addr: addr.String()}).Tunnel(context.Background(), TunnelRequest{Hops: 1, Keep: true})
	if err == nil || !strings.Contains(err.Error(), "429") || !strings.Contains(err.Error(), "DELETE /v1/tunnels/ID") {
		t.Fatalf("keeping a tunnel past the cap: %v, want 429 naming DELETE", err)
	}
	s.releaseKept()
	if !s.reserveKept() {
		t.Fatal("place not freed by releaseKept")
	}
}

// A stale socket (its node died) is replaced; a live one is not, and a
// path that is not a socket is left alone.
func TestUnixSocketStaleAndLive(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, SocketFile)
	a := &Server{}
	if _, err := a.Listen(UnixPrefix + path); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Server{}).Listen(UnixPrefix + path); err == nil || !strings.Contains(err.Error(), "another process answers") {
		t.Fatalf("second listener on a live socket: %v", err)
	}
	// Simulate a crash: the listener's fd goes, the file stays.
	a.ln.(*unixListener).Listener.Close()
	b := &Server{}
	if _, err := b.Listen(UnixPrefix + path); err != nil {
		t.Fatalf("replacing a stale socket: %v", err)
	}
	b.Close()
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Server{}).Listen(UnixPrefix + path); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("listening over a regular file: %v", err)
	}
	long := filepath.Join(dir, strings.Repeat("d", 100), SocketFile)
	if _, err := (&Server{}).Listen(UnixPrefix + long); err == nil || !strings.Contains(err.Error(), "too long") {
		t.Fatalf("a path too long for a socket: %v", err)
	}
}

func TestHostAllowed(t *testing.T) {
	s := &Server{}
	if _, err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST:80": true, "127.0.0.1:9": true, "[::1]:9": true, "127.9.9.9": true,
		"evil.example": false, "evil.example:80": false, "10.0.0.1:80": false, "": false, "localhost.evil.example": false,
	} {
		if got := s.hostAllowed(host); got != want {
			t.Errorf("hostAllowed(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestClientForDirNotRunning(t *testing.T) {
	if _, err := ClientForDir(t.TempDir(), nil); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("empty data directory: %v, want ErrNotRunning", err)
	}
}
