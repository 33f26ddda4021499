package experiment

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// Failure is a run of the sweep that did not complete: which one, why,
// and the last lines its plugins (or, on the test bed, its nodes)
// logged. Failed runs are in results.json and report.md, beside the
// runs that completed, and printed on the terminal when they fail.
type Failure struct {
	Run      int      `json:"run"` // 1-based, in the sweep's order
	Of       int      `json:"of"`  // runs in the sweep
	Policy   string   `json:"policy"`
	Plugin   string   `json:"plugin"`
	Workload string   `json:"workload"`
	Nodes    int      `json:"nodes"`
	Seed     uint64   `json:"seed,omitempty"`
	Error    string   `json:"error"`
	LogTail  []string `json:"log_tail,omitempty"`
}

// FailedError is what a sweep returns when some of its runs failed; the
// others completed and are in the results.
type FailedError struct {
	Failed, Runs int
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("%d of %d runs failed (see report.md and results.json, \"failed\")", e.Failed, e.Runs)
}

// PrintFailure writes a failed run to w at once: one line, then its log
// tail indented.
func PrintFailure(w io.Writer, f Failure) {
	if w == nil {
		return
	}
	fmt.Fprintf(w, "experiment %d/%d  %-28s %-12s %4d nodes  FAILED: %s\n", f.Run, f.Of, f.Policy, f.Workload, f.Nodes, f.Error)
	for _, l := range f.LogTail {
		fmt.Fprintf(w, "    | %s\n", l)
	}
}

// TailLines is how many log lines a failure keeps.
const TailLines = 40

// tail is a slog.Handler that keeps the last TailLines records as text
// lines and passes every record on to next (if any).
type tail struct {
	next  slog.Handler
	attrs []slog.Attr
	buf   *tailBuf
}

type tailBuf struct {
	mu    sync.Mutex
	lines []string
}

func newTail(next *slog.Logger) (*slog.Logger, *tailBuf) {
	b := &tailBuf{}
	var h slog.Handler
	if next != nil {
		h = next.Handler()
	}
	return slog.New(&tail{next: h, buf: b}), b
}

func (t *tail) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelDebug || (t.next != nil && t.next.Enabled(ctx, l))
}

// Handle keeps records at Info and above, and the child's raw stderr
// lines that go-plugin passes on at Debug (a record with a "logger"
// other than go-plugin's "stdio", and no "timestamp": not one of the
// child's structured log records), but not go-plugin's Debug chatter
// about starting, serving and stopping the child.
func (t *tail) Handle(ctx context.Context, r slog.Record) error {
	keep := r.Level >= slog.LevelInfo
	if !keep && r.Level >= slog.LevelDebug {
		raw, stamped := false, false
		r.Attrs(func(a slog.Attr) bool {
			switch a.Key {
			case "logger":
				raw = a.Value.String() != "stdio"
			case "timestamp":
				stamped = true
			}
			return true
		})
		keep = raw && !stamped
	}
	if keep {
		var sb strings.Builder
		sb.WriteString(r.Level.String())
		sb.WriteString(" ")
		sb.WriteString(r.Message)
		add := func(a slog.Attr) bool {
			fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value)
			return true
		}
		for _, a := range t.attrs {
			add(a)
		}
		r.Attrs(add)
		t.buf.add(sb.String())
	}
	if t.next != nil && t.next.Enabled(ctx, r.Level) {
		return t.next.Handle(ctx, r)
	}
	return nil
}

func (t *tail) WithAttrs(as []slog.Attr) slog.Handler {
	c := *t
	c.attrs = append(append([]slog.Attr(nil), t.attrs...), as...)
	if t.next != nil {
		c.next = t.next.WithAttrs(as)
	}
	return &c
}

func (t *tail) WithGroup(name string) slog.Handler {
	c := *t
	if t.next != nil {
		c.next = t.next.WithGroup(name)
	}
	return &c
}

func (b *tailBuf) add(line string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.lines) == TailLines {
		copy(b.lines, b.lines[1:])
		b.lines = b.lines[:TailLines-1]
	}
	b.lines = append(b.lines, line)
}

func (b *tailBuf) get() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.lines...)
}
