package pluginkit

import (
	"os"
	"time"

	"github.com/hashicorp/go-plugin"
)

// parentPoll is how often a child checks that its host is still alive.
const parentPoll = 500 * time.Millisecond

// Serve is the plugin side of Start: it serves one plugin of kind at the
// given protocol versions and blocks until the host ends the process. Kind
// packages wrap it (transportplugin.Serve, ...); plugin authors call those.
func Serve(kind string, versions map[int]plugin.Plugin) {
	describeIfAsked(kind, sortedVersions(versions)) // options.go: DescribeEnv
	log := Logger()
	log.Debug("serving plugin", "kind", kind, "versions", sortedVersions(versions))
	exitWithParent()
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: pluginSets(kind, versions),
		GRPCServer:       plugin.DefaultGRPCServer,
		Logger:           hclogForServe(),
	})
}

// exitWithParent ends the child when its host is gone. go-plugin relies on
// the host calling Kill; a host that is SIGKILLed never does, and the child
// would linger holding its port. Where the kernel tells of the host's exit
// (processExit) the child waits for that, at no cost; elsewhere it polls
// for reparenting, the portable signal.
func exitWithParent() {
	ppid := os.Getppid()
	if exited, _, ok := processExit(ppid); ok {
		// The host may have died before the watch began.
		if os.Getppid() != ppid {
			os.Exit(3)
		}
		go func() {
			<-exited
			os.Exit(3)
		}()
		return
	}
	go func() {
		for {
			time.Sleep(parentPoll)
			if os.Getppid() != ppid {
				os.Exit(3)
			}
		}
	}()
}
