package pluginkit

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/hashicorp/go-plugin"
)

// ProtocolVersion is the plugin protocol this SDK speaks. It covers every
// plugin kind: the gRPC services and the data-channel formats. Bump it on
// any incompatible change and keep serving the old version for a while
// (go-plugin picks the highest version both sides offer).
const ProtocolVersion = 1

// Handshake is the go-plugin handshake shared by host and plugins. The
// magic cookie is not a security measure: it only stops a user from running
// a plugin binary by hand and seeing gibberish.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "TARZAN_PLUGIN",
	MagicCookieValue: "d1b0e8a4c2f3e9a7-tarzan-plugin",
}

// ErrVersionMismatch is wrapped by the error Launch returns when host and
// plugin share no protocol version.
var ErrVersionMismatch = errors.New("pluginkit: no common plugin protocol version")

// pluginSets turns {version: plugin} into go-plugin's VersionedPlugins for
// one kind.
func pluginSets(kind string, versions map[int]plugin.Plugin) map[int]plugin.PluginSet {
	sets := make(map[int]plugin.PluginSet, len(versions))
	for v, p := range versions {
		sets[v] = plugin.PluginSet{kind: p}
	}
	return sets
}

func sortedVersions(versions map[int]plugin.Plugin) []int {
	vs := make([]int, 0, len(versions))
	for v := range versions {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	return vs
}

// versionError rewrites go-plugin's mismatch error so it names what both
// sides speak. go-plugin reports only the one version the plugin chose.
func versionError(name string, host []int, err error) error {
	if err == nil || !strings.Contains(err.Error(), "incompatible API version") {
		return err
	}
	plug := "unknown"
	if _, after, ok := strings.Cut(err.Error(), "Plugin version: "); ok {
		plug, _, _ = strings.Cut(after, ",")
	}
	return fmt.Errorf("%w: plugin %q speaks protocol version %s, this host speaks %v; upgrade whichever side is older (%v)",
		ErrVersionMismatch, name, plug, host, err)
}
