package node

// The two numbers that shape a Tarzan network, written once: config's
// node.toml defaults, the simulators, the control API and the launchers
// all refer to these.
const (
	// DefaultMimicCount is k, the mimics each node keeps links with
	// (Options.MimicCount, node.toml mimics.count).
	DefaultMimicCount = 6
	// DefaultTunnelHops is the length of a tunnel (Options.TunnelHops,
	// node.toml tunnels.hops, a control API tunnel request without hops).
	DefaultTunnelHops = 3
)
