// Package plugintest runs plugin children in tests by re-executing the
// test binary (go-plugin's TestHelperProcess idiom, done from TestMain so
// no -test.run filter is needed).
package plugintest

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

// arg marks a re-executed test binary as a plugin child.
const arg = "tarzan-test-plugin"

// Main is TestMain's body: in a child it calls serve(mode) and exits;
// otherwise it runs the tests.
func Main(m *testing.M, serve func(mode string)) {
	if len(os.Args) > 2 && os.Args[1] == arg {
		serve(os.Args[2])
		fmt.Fprintf(os.Stderr, "plugintest: serve(%q) returned\n", os.Args[2])
		os.Exit(0)
	}
	// Under -race every process sleeps 1 s at exit (atexit_sleep_ms);
	// children inherit this so closing one does not cost a second.
	if os.Getenv("GORACE") == "" {
		os.Setenv("GORACE", "atexit_sleep_ms=0")
	}
	os.Exit(m.Run())
}

// Launcher starts this test binary as a plugin child in the given mode.
func Launcher(t testing.TB, mode string) pluginkit.Launcher {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return pluginkit.Launcher{Path: exe, Args: []string{arg, mode}, Name: "test-" + mode}
}

// KillAndWait SIGKILLs the current child of r (by its PID, never by name)
// and waits until the supervisor has restarted it.
func KillAndWait(t testing.TB, r pluginkit.Reporter) {
	t.Helper()
	before := r.PluginStats()
	if before.PID == 0 {
		t.Fatalf("no child running: %+v", before)
	}
	if p, err := os.FindProcess(before.PID); err != nil || p.Kill() != nil {
		t.Fatalf("killing plugin child %d failed", before.PID)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		st := r.PluginStats()
		if st.Restarts > before.Restarts && st.Running {
			if st.PID == before.PID {
				t.Fatalf("restarted child has the old PID %d", st.PID)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no restart within 15s of SIGKILL: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
