package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/tarzan-net/tarzan/redteam"
)

// `tarzan redteam` mounts every registered attack against a local
// in-memory network of real nodes and prints what each attacker gained
// against a passive participant's baseline (package redteam).
func runRedteam(args []string) error {
	fs := newFlags("redteam", "redteam [--attack NAME[,NAME...]] [--quick] [--json] [--list]\n\n"+
		"Runs hostile nodes built on the real core against a local in-memory\n"+
		"network, one attack at a time, and prints a table: what the attacker\n"+
		"achieved, what a passive participant would, and the verdict (holds or\n"+
		"BROKEN). Exits 1 if any attack gained. Sends nothing off this process.")
	only := fs.String("attack", "", "comma-separated attack names to run (default: all; see --list)")
	list := fs.Bool("list", false, "list the attacks and exit")
	quick := fs.Bool("quick", false, "run the test-suite sizes (faster, coarser figures)")
	asJSON := fs.Bool("json", false, "print one JSON array on stdout instead of a table")
	timeout := fs.Duration("timeout", 30*time.Minute, "bound on the whole run")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *list {
		for _, a := range redteam.Attacks() {
			fmt.Printf("%-22s %-8s %s\n", a.Name, a.Severity, a.Finding)
		}
		return nil
	}
	var names []string
	if *only != "" {
		names = strings.Split(*only, ",")
	}
	attacks, err := redteam.Select(names)
	if err != nil {
		return err
	}
	size := redteam.Full
	if *quick {
		size = redteam.Quick
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	outs := redteam.RunAll(ctx, attacks, size, func(s string) { fmt.Fprintln(os.Stderr, s) })
	if ctx.Err() != nil {
		return fmt.Errorf("stopped after %d of %d attacks: %w (raise --timeout)", len(outs), len(attacks), ctx.Err())
	}
	if *asJSON {
		if err := writeRedteamJSON(outs); err != nil {
			return err
		}
	} else if err := redteam.WriteTable(os.Stdout, outs); err != nil {
		return err
	}
	broken := 0
	for _, o := range outs {
		if o.Broken() {
			broken++
		}
	}
	if broken > 0 {
		return fmt.Errorf("%d of %d attacks gained or could not run", broken, len(outs))
	}
	return nil
}

// writeRedteamJSON prints the outcomes as one JSON array.
func writeRedteamJSON(outs []redteam.Outcome) error {
	type row struct {
		Attack    string  `json:"attack"`
		Severity  string  `json:"severity"`
		Finding   string  `json:"finding"`
		Metric    string  `json:"metric"`
		Attacker  float64 `json:"attacker"`
		Passive   float64 `json:"passive"`
		Tolerance float64 `json:"tolerance"`
		Verdict   string  `json:"verdict"`
		Detail    string  `json:"detail"`
		Error     string  `json:"error,omitempty"`
		Seconds   float64 `json:"seconds"`
	}
	var rows []row
	for _, o := range outs {
		r := row{Attack: o.Attack.Name, Severity: o.Attack.Severity, Finding: o.Attack.Finding,
			Metric: o.Result.Metric, Attacker: o.Result.Attacker, Passive: o.Result.Passive,
			Tolerance: o.Result.Tolerance, Verdict: o.Result.Verdict(), Detail: o.Result.Detail,
			Seconds: o.Elapsed.Seconds()}
		if o.Err != nil {
			r.Error, r.Verdict = o.Err.Error(), "ERROR"
		}
		rows = append(rows, r)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(rows)
}
