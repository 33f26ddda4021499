// Command httpserve is the HTTP server of the network-namespace end-to-end
// test (scripts/e2e-netns.sh). It holds one file of random bytes in
// memory, serves it at every path, writes the file's SHA-256 (hex) to
// -sum, and appends one line per request to -log:
//
//	REMOTE_IP METHOD PATH STATUS BYTES
//
// so the test can check which address a request came from. It prints
// "ready" on stdout once it listens, and stops on SIGINT or SIGTERM, or
// after -lifetime as a safety net.
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8080", "address to listen on")
	size := flag.Int("size", 10<<20, "bytes of the random file")
	logPath := flag.String("log", "", "append one line per request to this file (required)")
	sumPath := flag.String("sum", "", "write the file's SHA-256 in hex to this file (required)")
	lifetime := flag.Duration("lifetime", 10*time.Minute, "exit after this long whatever happens")
	flag.Parse()
	if *logPath == "" || *sumPath == "" || *size < 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*listen, *size, *logPath, *sumPath, *lifetime); err != nil {
		fmt.Fprintln(os.Stderr, "httpserve:", err)
		os.Exit(1)
	}
}

func run(listen string, size int, logPath, sumPath string, lifetime time.Duration) error {
	body := make([]byte, size)
	if _, err := rand.Read(body); err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	if err := os.WriteFile(sumPath, []byte(hex.EncodeToString(sum[:])+"\n"), 0o644); err != nil {
		return err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	var mu sync.Mutex
	logLine := func(r *http.Request, status, n int) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(logf, "%s %s %s %d %d\n", host, r.Method, r.URL.Path, status, n)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.WriteHeader(http.StatusMethodNotAllowed)
			logLine(r, http.StatusMethodNotAllowed, 0)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		n := 0
		if r.Method == http.MethodGet {
			n, _ = w.Write(body)
		}
		logLine(r, http.StatusOK, n)
	})
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, lifetime)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Printf("ready %s %d bytes sha256 %x\n", ln.Addr(), len(body), sum)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shut, cancelShut := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancelShut()
	return srv.Shutdown(shut)
}
