package sidebyside

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The workloads, identical for every overlay: an unmodified curl through
// the overlay's SOCKS5 port to one local HTTP server.

// BytesServer serves GET /bytes/N: N bytes of random data (a 1 MiB
// random block repeated), on 127.0.0.1.
type BytesServer struct {
	Addr  netip.AddrPort
	srv   *http.Server
	block []byte
}

// StartBytesServer starts the server on a free loopback port.
func StartBytesServer() (*BytesServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &BytesServer{Addr: ln.Addr().(*net.TCPAddr).AddrPort(), block: make([]byte, 1<<20)}
	rand.Read(s.block)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /bytes/{n}", s.serve)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

func (s *BytesServer) serve(w http.ResponseWriter, r *http.Request) {
	n, err := strconv.ParseInt(r.PathValue("n"), 10, 64)
	if err != nil || n < 0 || n > 1<<40 {
		http.Error(w, "want /bytes/N with 0 ≤ N ≤ 2^40", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	for n > 0 {
		b := s.block[:min(n, int64(len(s.block)))]
		if _, err := w.Write(b); err != nil {
			return
		}
		n -= int64(len(b))
	}
}

// Close stops the server.
func (s *BytesServer) Close() { s.srv.Close() }

// Fetch is one curl transfer's outcome.
type Fetch struct {
	Bytes     int64
	TTFB      time.Duration // %{time_starttransfer}
	Total     time.Duration // %{time_total}
	Complete  bool          // HTTP 200 and every byte arrived
	CurlError string        // curl's exit status and stderr when it failed
}

// MBps is the transfer's rate in MB/s (10^6 bytes per second).
func (f Fetch) MBps() float64 {
	if f.Total <= 0 {
		return 0
	}
	return float64(f.Bytes) / 1e6 / f.Total.Seconds()
}

// curlFormat is what curl prints after a transfer (-w).
const curlFormat = "%{http_code} %{size_download} %{time_starttransfer} %{time_total}"

// CurlArgs is the command line for fetching size bytes from target
// (host:port as the overlay's exit must see it) through socks, bounded
// by maxTime. A user sends SOCKS5 credentials USER:x, which both
// overlays take as an isolation group ("": none).
func CurlArgs(socks netip.AddrPort, user string, target netip.AddrPort, size int64, maxTime time.Duration) []string {
	args := []string{"curl", "-sS", "-o", "/dev/null", "--socks5", socks.String()}
	if user != "" {
		args = append(args, "--proxy-user", user+":x")
	}
	return append(args, "--max-time", strconv.FormatFloat(maxTime.Seconds(), 'f', 0, 64), "-w", curlFormat,
		fmt.Sprintf("http://%s/bytes/%d", target, size))
}

// ParseCurlOutput reads curlFormat's output.
func ParseCurlOutput(out string, size int64) (Fetch, error) {
	var code int
	var f Fetch
	var ttfb, total float64
	if _, err := fmt.Sscanf(strings.TrimSpace(out), "%d %d %g %g", &code, &f.Bytes, &ttfb, &total); err != nil {
		return f, fmt.Errorf("curl printed %q, want %q: %w", out, curlFormat, err)
	}
	f.TTFB = time.Duration(ttfb * float64(time.Second))
	f.Total = time.Duration(total * float64(time.Second))
	f.Complete = code == 200 && f.Bytes == size
	return f, nil
}

// Curl runs one fetch. A curl that fails part-way still reports what it
// got (Complete false, CurlError set); err is for curl not running or
// printing nonsense.
func Curl(ctx context.Context, socks netip.AddrPort, user string, target netip.AddrPort, size int64, maxTime time.Duration) (Fetch, error) {
	args := CurlArgs(socks, user, target, size, maxTime)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	var exitErr *exec.ExitError
	if runErr != nil && !errors.As(runErr, &exitErr) {
		return Fetch{}, fmt.Errorf("running curl: %w", runErr)
	}
	f, err := ParseCurlOutput(string(out), size)
	if err != nil {
		return f, err
	}
	if runErr != nil || !f.Complete {
		f.Complete = false
		f.CurlError = strings.TrimSpace(fmt.Sprintf("%v %s", runErr, stderr.String()))
	}
	return f, nil
}

// CurlMany runs n fetches of size at once and returns them and the wall
// time from the first start to the last end. With isolate, fetch i
// sends the SOCKS user flowI, so each is in its own isolation group.
func CurlMany(ctx context.Context, n int, socks netip.AddrPort, isolate bool, target netip.AddrPort, size int64, maxTime time.Duration) ([]Fetch, time.Duration, error) {
	out := make([]Fetch, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := ""
			if isolate {
				user = fmt.Sprintf("flow%d", i+1)
			}
			out[i], errs[i] = Curl(ctx, socks, user, target, size, maxTime)
		}()
	}
	wg.Wait()
	return out, time.Since(start), errors.Join(errs...)
}

// maxTime bounds a fetch of size bytes: 30 s plus the time at 0.2 MB/s.
func maxTime(size int64) time.Duration {
	return 30*time.Second + time.Duration(float64(size)/0.2e6*float64(time.Second))
}

var execLookPath = exec.LookPath
