// Command tarzan is the Tarzan node, its tools and its shipped plugins in
// one binary.
package main

import (
	"fmt"
	"os"
)

type command struct {
	name    string
	summary string
	run     func(args []string) error
}

var commands []command

func init() {
	commands = []command{
		{"init", "create a node.toml and an identity key", runInit},
		{"node", "run a node (tarzan node -c node.toml)", runNode},
		{"validate", "check a node.toml and report problems with file and line", runValidate},
		{"status", "show a running node's peers, mimic links and counters", runStatus},
		{"tunnel", "build, ping, list and close tunnels through a running node", runTunnel},
		{"testnet", "start a local network with a SOCKS5 port and leave it running until Ctrl-C", runTestnet},
		{"demo", "start a local network of node processes, build tunnels, ping every hop", runDemo},
		{"plugin", "run or inspect plugins (tarzan plugin serve KIND NAME)", runPlugin},
		{"bench", "measure the shipped transports in and out of process (tarzan bench transports)", runBench},
		{"sim", "run N real nodes on a simulated network and report convergence, tunnels, memory", runSim},
		{"redteam", "mount hostile nodes against a local network and report what each attack gained", runRedteam},
		{"version", "print the release, commit and protocol versions (also --version)", runVersion},
		{"experiment", "sweep cover policies against a traffic-analysis adversary (tarzan experiment -c FILE.toml)", runExperiment},
	}
}

func usage() {
	fmt.Fprintf(os.Stderr, `tarzan — a peer-to-peer anonymizing network layer

Usage: tarzan COMMAND [flags]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun 'tarzan COMMAND -h' for a command's flags.\n")
}

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	name := os.Args[1]
	switch name {
	case "-h", "--help", "help":
		usage()
		return
	case "--version", "-version", "-V":
		name = "version"
	}
	for _, c := range commands {
		if c.name == name {
			if err := c.run(os.Args[2:]); err != nil {
				switch err {
				case errUsage:
					os.Exit(2)
				case errInterrupted: // Ctrl-C, SIGTERM, SIGHUP: stopped cleanly, quietly
					os.Exit(130)
				}
				fmt.Fprintf(os.Stderr, "tarzan %s: %v\n", name, err)
				os.Exit(1)
			}
			return
		}
	}
	fmt.Fprintf(os.Stderr, "tarzan: unknown command %q\n\n", name)
	usage()
	os.Exit(2)
}
