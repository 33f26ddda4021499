package localnet

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/net/proxy"
)

// FetchResult is one fetch through the network (the "fetch" object of
// `tarzan demo --json`).
type FetchResult struct {
	URL         string  `json:"url"`
	Bytes       int64   `json:"bytes"`
	SHA256Match bool    `json:"sha256_match"`
	ServerSaw   string  `json:"server_saw"`  // the address the HTTP server saw the request from
	ClientAddr  string  `json:"client_addr"` // the client node's own address
	Seconds     float64 `json:"seconds"`
	MBitPerSec  float64 `json:"mbit_per_s"`
}

// FileServer is a local HTTP server holding one random file at /file; it
// records who fetched it.
type FileServer struct {
	Addr netip.AddrPort // where it listens, on loopback
	body []byte
	sum  [32]byte
	srv  *http.Server

	mu  sync.Mutex
	saw []string
}

// StartFileServer serves size random bytes at /file on 127.0.0.1.
func StartFileServer(size int) (*FileServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &FileServer{Addr: ln.Addr().(*net.TCPAddr).AddrPort(), body: make([]byte, size)}
	rand.Read(s.body)
	s.sum = sha256.Sum256(s.body)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /file", func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		s.mu.Lock()
		s.saw = append(s.saw, host)
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(s.body)
	})
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// Close stops the server.
func (s *FileServer) Close() { s.srv.Close() }

func (s *FileServer) lastSaw() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.saw) == 0 {
		return ""
	}
	return s.saw[len(s.saw)-1]
}

// FetchViaSOCKS downloads the server's file through a SOCKS5 proxy and
// checks it byte for byte.
func FetchViaSOCKS(ctx context.Context, socks netip.AddrPort, s *FileServer, via netip.AddrPort) (*FetchResult, error) {
	return FetchViaSOCKSProgress(ctx, socks, s, via, nil)
}

// FetchViaSOCKSProgress is FetchViaSOCKS that calls progress (if not nil)
// as each quarter of the file arrives, with the bytes so far and the
// file's size: the demo shows it while it fetches.
func FetchViaSOCKSProgress(ctx context.Context, socks netip.AddrPort, s *FileServer, via netip.AddrPort, progress func(done, total int64)) (*FetchResult, error) {
	d, err := proxy.SOCKS5("tcp", socks.String(), &proxy.Auth{User: "demo", Password: "demo"}, proxy.Direct)
	if err != nil {
		return nil, err
	}
	cd := d.(proxy.ContextDialer)
	client := &http.Client{Transport: &http.Transport{DialContext: cd.DialContext, DisableKeepAlives: true}}
	url := fmt.Sprintf("http://%s/file", via)
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s through SOCKS5 %s: %w", url, socks, err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	var w io.Writer = h
	if progress != nil {
		w = &quarters{w: h, total: int64(len(s.body)), report: progress}
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading %s through the tunnel after %d bytes: %w", url, n, err)
	}
	secs := time.Since(start).Seconds()
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return &FetchResult{
		URL: url, Bytes: n, SHA256Match: sum == s.sum && n == int64(len(s.body)),
		ServerSaw: s.lastSaw(), Seconds: secs, MBitPerSec: float64(n) * 8 / 1e6 / secs,
	}, nil
}

// quarters passes writes on and reports each quarter of total reached.
type quarters struct {
	w      io.Writer
	total  int64
	done   int64
	next   int64 // the quarter (1..4) reported next
	report func(done, total int64)
}

func (q *quarters) Write(p []byte) (int, error) {
	n, err := q.w.Write(p)
	q.done += int64(n)
	if q.next == 0 {
		q.next = 1
	}
	for q.next <= 4 && q.total > 0 && q.done*4 >= q.next*q.total {
		q.report(q.done, q.total)
		q.next++
	}
	return n, err
}
