package static

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/tarzan-net/tarzan/sdk/discovery"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var _ discovery.Factory = New

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bootstrap.txt")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func started(t *testing.T, options map[string]string) discovery.Discovery {
	t.Helper()
	d, err := New(options)
	if err != nil {
		t.Fatalf("New(%v): %v", options, err)
	}
	t.Cleanup(func() { d.Close() })
	if err := d.Start(nil); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return d
}

func next(t *testing.T, d discovery.Discovery) []discovery.Proposal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ps, err := d.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return ps
}

func TestPeersAndFile(t *testing.T) {
	desc := []byte("a signed descriptor")
	path := writeFile(t, strings.Join([]string{
		"# bootstrap peers",
		"",
		"  192.0.2.7:7000   # a comment after an entry",
		"[2001:db8::7]:7000",
		"192.0.2.1:7000", // also in "peers": proposed once
		"desc " + base64.StdEncoding.EncodeToString(desc),
		"desc " + base64.RawStdEncoding.EncodeToString(desc[:4]),
	}, "\r\n"))
	d := started(t, map[string]string{
		"peers": " 192.0.2.1:7000, [2001:db8::1]:7000,",
		"file":  path,
	})
	if d.Name() != "static" {
		t.Errorf("Name = %q", d.Name())
	}
	ps := next(t, d)
	want := []discovery.Proposal{
		{Addr: netip.MustParseAddrPort("192.0.2.1:7000")},
		{Addr: netip.MustParseAddrPort("[2001:db8::1]:7000")},
		{Addr: netip.MustParseAddrPort("192.0.2.7:7000")},
		{Addr: netip.MustParseAddrPort("[2001:db8::7]:7000")},
		{Descriptor: desc},
		{Descriptor: desc[:4]},
	}
	if len(ps) != len(want) {
		t.Fatalf("got %d proposals %v, want %d", len(ps), ps, len(want))
	}
	for i := range want {
		if ps[i].Addr != want[i].Addr || !bytes.Equal(ps[i].Descriptor, want[i].Descriptor) || ps[i].Transport != "" {
			t.Errorf("proposal %d = %+v, want %+v", i, ps[i], want[i])
		}
	}
	if err := d.Admitted([][]byte{desc}); err != nil {
		t.Errorf("Admitted: %v", err)
	}
}

func TestReproposesEveryInterval(t *testing.T) {
	const interval = 30 * time.Millisecond
	d := started(t, map[string]string{"peers": "192.0.2.1:7000", "interval": interval.String()})
	first := next(t, d)
	first[0].Addr = netip.AddrPort{} // the caller owns the slice
	for range 2 {
		begin := time.Now()
		ps := next(t, d)
		if waited := time.Since(begin); waited < interval/2 {
			t.Errorf("list proposed again after %v, want about %v", waited, interval)
		}
		if len(ps) != 1 || ps[0].Addr != netip.MustParseAddrPort("192.0.2.1:7000") {
			t.Errorf("re-proposal = %v", ps)
		}
	}
}

func TestCloseUnblocksNext(t *testing.T) {
	for name, opts := range map[string]map[string]string{
		"empty list":          {},
		"waiting an interval": {"peers": "192.0.2.1:7000", "interval": "1h"},
	} {
		t.Run(name, func(t *testing.T) {
			d := started(t, opts)
			if len(opts) > 0 {
				next(t, d)
			}
			errc := make(chan error, 1)
			go func() {
				_, err := d.Next(context.Background())
				errc <- err
			}()
			time.Sleep(10 * time.Millisecond) // let Next block; the result holds either way
			if err := d.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			select {
			case err := <-errc:
				if !errors.Is(err, discovery.ErrClosed) {
					t.Errorf("Next after Close = %v, want ErrClosed", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Close did not unblock Next")
			}
			if _, err := d.Next(context.Background()); !errors.Is(err, discovery.ErrClosed) {
				t.Errorf("Next on a closed backend = %v, want ErrClosed", err)
			}
			if err := d.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
			if err := d.Start(nil); !errors.Is(err, discovery.ErrClosed) {
				t.Errorf("Start after Close = %v, want ErrClosed", err)
			}
		})
	}
}

func TestNextBeforeStartHonoursContext(t *testing.T) {
	d, err := New(map[string]string{"peers": "192.0.2.1:7000"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := d.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Next before Start = %v, want the context's error", err)
	}
	if err := d.Start(nil); err != nil {
		t.Fatal(err)
	}
	if err := d.Start(nil); err == nil {
		t.Errorf("second Start succeeded")
	}
}

func TestOptionErrors(t *testing.T) {
	tests := []struct {
		opts map[string]string
		want string
	}{
		{map[string]string{"peers": "example.com:7000"}, `option "peers": "example.com:7000"`},
		{map[string]string{"peers": "192.0.2.1"}, `option "peers"`},
		{map[string]string{"peers": "192.0.2.1:0"}, "port 0"},
		{map[string]string{"peers": "0.0.0.0:7000"}, "unspecified"},
		{map[string]string{"peers": "[ff02::1]:7000"}, "multicast"},
		{map[string]string{"interval": "soon"}, `option "interval"`},
		{map[string]string{"interval": "-1s"}, `option "interval"`},
		{map[string]string{"file": ""}, `option "file"`},
		{map[string]string{"file": "/nonexistent/bootstrap"}, "/nonexistent/bootstrap"},
		{map[string]string{"peer": "192.0.2.1:7000"}, `unknown option "peer"`},
	}
	for _, tt := range tests {
		_, err := New(tt.opts)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%v) = %v, want an error containing %q", tt.opts, err, tt.want)
		}
	}
}

func TestFileErrorsNameFileAndLine(t *testing.T) {
	tests := []struct {
		line string
		want string
	}{
		{"localhost:7000", "want an IP literal"},
		{"192.0.2.1:7000 192.0.2.2:7000", "one host:port"},
		{"desc", "desc"},
		{"desc !!!", "bad base64"},
		{"desc " + base64.StdEncoding.EncodeToString(make([]byte, maxDescriptor+1)), "want 1..1024"},
		{strings.Repeat("x", maxLine+1), "too long"},
	}
	for _, tt := range tests {
		path := writeFile(t, "# header\n192.0.2.1:7000\n\n"+tt.line+"\n")
		_, err := New(map[string]string{"file": path})
		if err == nil {
			t.Errorf("line %.40q accepted", tt.line)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, path+":4:") || !strings.Contains(msg, tt.want) {
			t.Errorf("line %.40q: error %q, want %s:4: and %q", tt.line, msg, path, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("192.0.2.1:7000\n# c\n[::1]:1\ndesc AAAA\n")
	f.Add("desc " + base64.RawStdEncoding.EncodeToString([]byte("abcde")))
	f.Fuzz(func(t *testing.T, text string) {
		ps, err := Parse(strings.NewReader(text), "fuzz")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz:") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		for _, p := range ps {
			if p.Descriptor == nil && !p.Addr.IsValid() {
				t.Fatalf("proposal with neither descriptor nor address: %+v", p)
			}
			if len(p.Descriptor) > maxDescriptor {
				t.Fatalf("descriptor of %d bytes accepted", len(p.Descriptor))
			}
		}
	})
}

// Quiet rounds stretch: one interval, then twice as long each time up to
// 32 intervals; a descriptor admitted for the first time brings the next
// round back to one interval after the last, one seen before does not.
func TestQuietRoundsStretchUntilNews(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const interval = time.Second
		d, err := New(map[string]string{"peers": "192.0.2.1:7000", "interval": interval.String()})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if err := d.Start(nil); err != nil {
			t.Fatal(err)
		}
		wait := func() time.Duration {
			t.Helper()
			begin := time.Now()
			if ps, err := d.Next(t.Context()); err != nil || len(ps) != 1 {
				t.Fatalf("Next = %v, %v", ps, err)
			}
			return time.Since(begin)
		}
		if w := wait(); w != 0 {
			t.Errorf("first proposal after %v, want at once", w)
		}
		for _, want := range []time.Duration{1, 2, 4, 8, 16, 32, 32} {
			if w := wait(); w != want*interval {
				t.Errorf("quiet round after %v, want %v", w, want*interval)
			}
		}
		// Admitted during a 32-interval wait: the round comes one
		// interval after the last one.
		go func() {
			time.Sleep(5 * interval)
			d.Admitted([][]byte{[]byte("peer A's descriptor")})
		}()
		if w := wait(); w != 5*interval {
			t.Errorf("round after news %v after the last, want 5s (at the news: one interval was already over)", w)
		}
		if w := wait(); w != interval {
			t.Errorf("round after that after %v, want %v", w, interval)
		}
		if w := wait(); w != 2*interval {
			t.Errorf("next quiet round after %v, want %v", w, 2*interval)
		}
		go func() {
			time.Sleep(interval / 2)
			d.Admitted([][]byte{[]byte("peer A's descriptor")}) // seen: no news
		}()
		if w := wait(); w != 4*interval {
			t.Errorf("round after a known descriptor %v, want %v", w, 4*interval)
		}
	})
}

// stretch = false keeps every round one interval apart, for harnesses
// that count probes per round; a value that is not a bool is refused.
func TestStretchOff(t *testing.T) {
	if _, err := New(map[string]string{"peers": "192.0.2.1:7000", "stretch": "sometimes"}); err == nil || !strings.Contains(err.Error(), "stretch") {
		t.Fatalf("stretch = sometimes: err %v, want one naming the option", err)
	}
	synctest.Test(t, func(t *testing.T) {
		d, err := New(map[string]string{"peers": "192.0.2.1:7000", "interval": "1s", "stretch": "false"})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		if err := d.Start(nil); err != nil {
			t.Fatal(err)
		}
		for i := range 6 {
			begin := time.Now()
			if _, err := d.Next(t.Context()); err != nil {
				t.Fatal(err)
			}
			if w, want := time.Since(begin), min(i, 1)*int(time.Second); w != time.Duration(want) {
				t.Fatalf("round %d after %v, want %v", i, w, time.Duration(want))
			}
		}
	})
}
