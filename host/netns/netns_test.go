package netns

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStalePID(t *testing.T) {
	for _, tc := range []struct {
		name string
		pid  int
		ok   bool
	}{
		{"tzb123r1t-bb", 123, true},
		{"tzb42-x", 42, true},
		{"tzbx-1", 0, false},
		{"tzb", 0, false},
	} {
		pid, ok := stalePID(tc.name, "tzb")
		if pid != tc.pid || ok != tc.ok {
			t.Errorf("stalePID(%q) = %d, %v, want %d, %v", tc.name, pid, ok, tc.pid, tc.ok)
		}
	}
}

// needRoot skips a test that creates namespaces unless it can.
func needRoot(t *testing.T) {
	t.Helper()
	if err := Check(); err != nil {
		t.Skip(err)
	}
}

// TestSetLifecycle creates two namespaces joined by a veth, runs a
// process in one, and checks that Close removes everything.
func TestSetLifecycle(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	set := NewSet("tznstest", "a")
	t.Cleanup(func() { set.Close() })
	a, err := set.Add(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := set.Add(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if err := Veth(ctx, a, "eth0", "10.99.0.1/30", b, "eth0", "10.99.0.2/30"); err != nil {
		t.Fatal(err)
	}
	if err := Sysctl(a, "net/ipv4/ping_group_range", "0 2147483647"); err != nil {
		t.Fatal(err)
	}
	// The setting is a's, not the host's.
	if err := Do(a, func() error {
		got, err := os.ReadFile("/proc/sys/net/ipv4/ping_group_range")
		if err == nil && !strings.HasPrefix(strings.Join(strings.Fields(string(got)), " "), "0 2147483647") {
			err = fmt.Errorf("ping_group_range in %s is %q", a, got)
		}
		return err
	}); err != nil {
		t.Error(err)
	}
	// A listener in b, dialled from a across the veth.
	l, err := Listen(b, "tcp", "10.99.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := Dial(ctx, a, "tcp", l.Addr().String())
	if err != nil {
		t.Fatalf("dial across the veth: %v", err)
	}
	c.Close()
	p, err := set.Start("sleep", a, filepath.Join(t.TempDir(), "sleep.log"), "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if !slices.Contains(Pids(a), p.PID()) {
		t.Errorf("sleep (pid %d) not among %s's processes %v", p.PID(), a, Pids(a))
	}
	if problems := set.Close(); len(problems) > 0 {
		t.Errorf("close: %v", problems)
	}
	if !p.Exited() {
		t.Error("process still running after Close")
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	if strings.Contains(string(out), set.Prefix()) {
		t.Errorf("namespaces left after Close:\n%s", out)
	}
}

// TestRemoveStale removes a namespace whose runner PID is dead and keeps
// one whose runner lives.
func TestRemoveStale(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A PID that is surely dead: a child that has exited and been reaped.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	if syscall.Kill(dead, 0) == nil {
		t.Skipf("pid %d reused already", dead)
	}
	stale := fmt.Sprintf("tznsstale%dr1-x", dead)
	if err := IP(ctx, "netns", "add", stale); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", stale).Run() })
	live := NewSet("tznsstale", "r2")
	t.Cleanup(func() { live.Close() })
	if _, err := live.Add(ctx, "y"); err != nil {
		t.Fatal(err)
	}
	removed := RemoveStale("tznsstale")
	if !slices.Equal(removed, []string{stale}) {
		t.Errorf("removed %v, want [%s]", removed, stale)
	}
	if len(live.Namespaces()) != 1 {
		t.Fatal("live set lost its namespace")
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	if !strings.Contains(string(out), live.Namespaces()[0]) {
		t.Error("a live runner's namespace was removed")
	}
}
