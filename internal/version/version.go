// Package version says which Tarzan a binary is: its release, the commit
// it was built from, the Go that built it, and the protocol versions it
// speaks. scripts/release.sh sets Release and Commit with -ldflags -X.
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/tarzan-net/tarzan/core/link"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

// Set at link time: -ldflags "-X github.com/tarzan-net/tarzan/internal/version.Release=v0.16.0
// -X github.com/tarzan-net/tarzan/internal/version.Commit=abc1234".
var (
	Release = "dev"
	Commit  = ""
)

// Info is what `tarzan version` prints.
type Info struct {
	Release        string `json:"release"`
	Commit         string `json:"commit"`
	Modified       bool   `json:"modified,omitempty"` // built from a tree with uncommitted changes
	Go             string `json:"go"`
	Platform       string `json:"platform"`
	Protocol       string `json:"protocol"`        // wire protocol, from core/link's prologue ("v4")
	PluginProtocol int    `json:"plugin_protocol"` // go-plugin handshake version (sdk/pluginkit)
}

// Protocol is the wire protocol version: nodes of different versions do
// not interoperate. It is the suffix of the link handshake's prologue.
func Protocol() string {
	return link.Prologue[strings.LastIndexByte(link.Prologue, '-')+1:]
}

// Get returns this binary's version information. Without -ldflags the
// commit comes from the build's VCS stamp (go build in a git checkout).
func Get() Info {
	in := Info{Release: Release, Commit: Commit, Go: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH, Protocol: Protocol(), PluginProtocol: pluginkit.ProtocolVersion}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && in.Commit == "":
				in.Commit = s.Value
			case s.Key == "vcs.modified":
				in.Modified = s.Value == "true"
			}
		}
	}
	if len(in.Commit) > 12 {
		in.Commit = in.Commit[:12]
	}
	if in.Commit == "" {
		in.Commit = "unknown"
	}
	return in
}

// String is the one line `tarzan --version` prints.
func (in Info) String() string {
	commit := in.Commit
	if in.Modified {
		commit += "+dirty"
	}
	return fmt.Sprintf("tarzan %s (commit %s, %s, %s) protocol %s, plugin protocol %d",
		in.Release, commit, in.Go, in.Platform, in.Protocol, in.PluginProtocol)
}
