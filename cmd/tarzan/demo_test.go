package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// `tarzan demo -stay` (what `tarzan testnet` runs) keeps a network up
// until a signal, then stops every process it started, removes its
// directory and exits 130 without an error line: for Ctrl-C (SIGINT) and
// for a closed terminal (SIGHUP). The SIGINT case runs the network on the
// external xor transport plugin given by path (-transport PATH).
func TestDemoSignals(t *testing.T) {
	if testing.Short() {
		t.Skip("starts local networks of node processes")
	}
	xor, _ := buildXOR(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGHUP} {
		t.Run(sig.String(), func(t *testing.T) {
			args := []string{"demo", "-stay", "-nodes", "4", "-hops", "2", "-tunnels", "1", "-pings", "1", "-fetch-size", "65536", "-timeout", "4m"}
			if sig == syscall.SIGINT {
				args = append(args, "-transport", xor, "-transport-option", "key=demo-test")
			}
			var stdout, stderr lockedBuf
			cmd := exec.Command(tarzanBin, args...)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			defer func() {
				if cmd.ProcessState == nil {
					cmd.Process.Kill()
					<-done
				}
			}()
			running := regexp.MustCompile(`(\d+) nodes running in (\S+)\. Try:`)
			deadline := time.Now().Add(5 * time.Minute)
			for !strings.Contains(stderr.String(), "Ctrl-C stops them.") {
				select {
				case err := <-done:
					t.Fatalf("demo -stay ended before it was signalled: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
				case <-time.After(100 * time.Millisecond):
				}
				if time.Now().After(deadline) {
					t.Fatalf("no network after 5 min\nstderr:\n%s", stderr.String())
				}
			}
			m := running.FindStringSubmatch(stderr.String())
			if m == nil || m[1] != "4" {
				t.Fatalf("no \"4 nodes running in DIR\" line:\n%s", stderr.String())
			}
			dir := m[2]
			if !strings.Contains(stdout.String(), "sha256 match: true") {
				t.Errorf("the report before the wait shows no good fetch:\n%s", stdout.String())
			}
			procs := descendants(cmd.Process.Pid)
			if len(procs) < 8 { // 4 nodes, each with plugin children
				t.Fatalf("only %d processes under the demo", len(procs))
			}
			if sig == syscall.SIGINT && !slices.ContainsFunc(procs, func(pid int) bool {
				exe, _ := os.Readlink(filepath.Join("/proc", itoa(pid), "exe"))
				return exe == xor
			}) {
				t.Errorf("no process under the demo runs the transport plugin %s", xor)
			}

			cmd.Process.Signal(sig)
			select {
			case <-done:
			case <-time.After(90 * time.Second):
				t.Fatalf("still running 90 s after %v\nstderr:\n%s", sig, stderr.String())
			}
			if code := cmd.ProcessState.ExitCode(); code != 130 {
				t.Errorf("exit code after %v: %d, want 130\nstderr:\n%s", sig, code, stderr.String())
			}
			if s := stderr.String(); strings.Contains(s, "tarzan demo:") || strings.Contains(strings.ToLower(s), "error") {
				t.Errorf("an error was reported after %v:\n%s", sig, s)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Errorf("the demo directory %s is left after %v (%v)", dir, sig, err)
			}
			var left []int
			for _, pid := range procs {
				if alive(pid) {
					left = append(left, pid)
				}
			}
			if len(left) > 0 {
				for _, pid := range left {
					syscall.Kill(pid, syscall.SIGKILL)
				}
				t.Errorf("%d of %d processes outlived the demo after %v: %v", len(left), len(procs), sig, left)
			}
		})
	}
}

// descendants lists every live process under pid (Linux /proc).
func descendants(pid int) []int {
	ents, _ := os.ReadDir("/proc")
	parent := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		pp := parentOf(p)
		parent[pp] = append(parent[pp], p)
	}
	var out []int
	for q := []int{pid}; len(q) > 0; q = q[1:] {
		for _, c := range parent[q[0]] {
			out = append(out, c)
			q = append(q, c)
		}
	}
	return out
}

// alive reports whether pid is a running process (a zombie waiting for
// its reaper counts as gone).
func alive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", itoa(pid), "stat"))
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}
