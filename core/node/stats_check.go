package node

// Counters of the tunnel check (tunnel_check.go). Same conventions as
// stats.go.
const (
	EventTunnelChecks       = "tunnel_checks"        // checks started: traffic on one of our tunnels stopped flowing (triggers A and B)
	EventTunnelChecksFailed = "tunnel_checks_failed" // checks the exit did not answer in TunnelCheckTimeout: hopLost was called
)
