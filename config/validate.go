package config

import (
	"math"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/tarzan-net/tarzan/core/loopcover"
	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/sdk/exitpolicy"
)

var (
	logLevels  = []string{"debug", "info", "warn", "error"}
	pluginName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	hexSHA256  = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
)

// Limits the core relies on.
const (
	maxMimics = 32
	maxHops   = 4 // onion MaxHops
	minEpoch  = time.Second
	// minPeerSilence is core/node's (unexported) floor on PeerSilence;
	// host's tests (TestConfigPeerSilenceFloor) check that node.New agrees.
	minPeerSilence = time.Second
)

func (c *Config) validate(v *checker) {
	c.Node.validate(v)
	c.Mimics.validate(v)
	c.Tunnels.validate(v)
	c.Transport.validate(v)
	c.Discovery.validate(v, "discovery")
	c.Cover.validate(v)
	if c.Adapter.Name != "" || c.Adapter.Path != "" {
		c.Adapter.validate(v, "adapter")
	}
	c.Exit.Plugin.validate(v, "exit")
	if _, err := exitpolicy.Parse(c.Exit.Policy); err != nil {
		v.fail("exit.policy", "%v", err)
	}
	c.Exit.validateDeprecated(v)
	c.Limits.validate(v)
	c.Metrics.validate(v)
}

// validate checks the limits against core/node's own rules (node.New
// would refuse the same values, but without naming the key), and refuses
// the values core/node reads as "the default" (0), which in a file would
// only hide a mistake.
func (l *Limits) validate(v *checker) {
	if l.CircuitsPerLink < 1 || l.CircuitsPerLink > node.MaxCircuitsLimit {
		v.fail("limits.circuits_per_link", "%d is out of range 1..%d", l.CircuitsPerLink, node.MaxCircuitsLimit)
	}
	switch {
	case l.Circuits < 1 || l.Circuits > node.MaxCircuitsLimit:
		v.fail("limits.circuits", "%d is out of range 1..%d", l.Circuits, node.MaxCircuitsLimit)
	case l.Circuits < l.CircuitsPerLink && l.CircuitsPerLink <= node.MaxCircuitsLimit:
		// Shown at circuits if the file sets it, else at the
		// circuits_per_link that went over its default.
		near := "limits.circuits"
		if _, ok := v.lines[near]; !ok {
			near = "limits.circuits_per_link"
		}
		v.failAt("limits.circuits", near, "%d is below limits.circuits_per_link (%d): raise it or lower that", l.Circuits, l.CircuitsPerLink)
	}
	if !(l.CreateRate > 0 && l.CreateRate <= node.MaxCreateRate) {
		v.fail("limits.create_rate", "%v is out of range: want CREATEs per second greater than 0 and at most %d (this limit cannot be switched off)", l.CreateRate, int(node.MaxCreateRate))
	}
	rate := func(key string, r float64) {
		switch {
		case math.IsNaN(r) || math.IsInf(r, 0):
			v.fail(key, "%v is not a rate: want a finite number per second, or a negative one to switch the limit off", r)
		case r == 0:
			v.fail(key, "0 is not a rate: want one greater than 0, or a negative one (-1.0) to switch the limit off")
		}
	}
	burst := func(key, rateKey string, b int) {
		if b < 1 {
			v.fail(key, "%d is below 1; a burst of 0 would refuse everything (switch the limit off with a negative %s instead)", b, rateKey)
		}
	}
	rate("limits.probe_rate", l.ProbeRate)
	burst("limits.probe_burst", "limits.probe_rate", l.ProbeBurst)
	rate("limits.probe_global_rate", l.ProbeGlobalRate)
	burst("limits.probe_global_burst", "limits.probe_global_rate", l.ProbeGlobalBurst)
	rate("limits.handshake_rate", l.HandshakeRate)
	burst("limits.handshake_burst", "limits.handshake_rate", l.HandshakeBurst)
	if l.LimiterSources < 1 {
		v.fail("limits.limiter_sources", "%d is below 1", l.LimiterSources)
	}
	if l.OrphanGrace == 0 {
		v.fail("limits.orphan_grace", `0s is not allowed: want a duration such as "30s", or a negative one ("-1s") to keep no orphans`)
	}
	switch {
	case l.PeerSilence == 0:
		v.fail("limits.peer_silence", `0s is not allowed: want at least %s, or a negative duration ("-1s") to switch eviction off`, minPeerSilence)
	case l.PeerSilence > 0 && l.PeerSilence < minPeerSilence:
		v.fail("limits.peer_silence", "%s is shorter than %s", l.PeerSilence, minPeerSilence)
	}
}

func (n *Node) validate(v *checker) {
	if n.Identity == "" {
		v.fail("node.identity", "must name the identity key file")
	}
	if n.DataDir == "" {
		v.fail("node.data_dir", `must name a directory ("." for this file's directory)`)
	}
	n.validateControl(v) // observe_keys.go
	if !slices.Contains(logLevels, n.LogLevel) {
		v.fail("node.log_level", "%q is not one of debug, info, warn, error", n.LogLevel)
	}
	n.validateObserve(v)
}

func (m *Mimics) validate(v *checker) {
	if m.Count < 1 || m.Count > maxMimics {
		v.fail("mimics.count", "%d is out of range 1..%d", m.Count, maxMimics)
	}
	if m.Epoch < minEpoch {
		v.fail("mimics.epoch", "%s is shorter than %s", m.Epoch, minEpoch)
	}
}

func (t *Tunnels) validate(v *checker) {
	if t.Hops < 1 || t.Hops > maxHops {
		v.fail("tunnels.hops", "%d is out of range 1..%d", t.Hops, maxHops)
	}
	if t.IdleTimeout <= 0 {
		v.fail("tunnels.idle_timeout", "%s must be greater than zero", t.IdleTimeout)
	}
	if t.Quiet < node.MinTunnelCheck {
		v.fail("tunnels.quiet", "%s is shorter than %s", t.Quiet, node.MinTunnelCheck)
	}
	if t.CheckTimeout < node.MinTunnelCheck {
		v.fail("tunnels.check_timeout", "%s is shorter than %s", t.CheckTimeout, node.MinTunnelCheck)
	}
	if len(t.DNS) == 0 {
		v.fail("tunnels.dns", "is empty: clients would have no resolver inside the tunnel")
	}
	for _, a := range t.DNS {
		if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.IsLoopback() {
			v.fail("tunnels.dns", "%s cannot be a resolver address inside the tunnel", a)
		}
	}
}

// validate checks the loop settings against core/node's own limits
// (node.New would refuse the same values, but without naming the key).
func (c *Cover) validate(v *checker) {
	c.Plugin.validate(v, "cover")
	if c.LoopTimeout <= 0 {
		v.fail("cover.loop_timeout", "%s must be greater than zero", c.LoopTimeout)
	}
	if c.LoopTunnels < 1 || c.LoopTunnels > loopcover.MaxTunnels {
		v.fail("cover.loop_tunnels", "%d is out of range 1..%d", c.LoopTunnels, loopcover.MaxTunnels)
	}
	if c.LoopWindow < 1 || c.LoopWindow > loopcover.MaxWindow {
		v.fail("cover.loop_window", "%d is out of range 1..%d", c.LoopWindow, loopcover.MaxWindow)
	}
	if !(c.LoopAlertLoss > 0 && c.LoopAlertLoss <= 1) {
		v.fail("cover.loop_alert_loss", "%v is out of range: want a share of the window greater than 0 and at most 1", c.LoopAlertLoss)
	}
}

func (t *Transport) validate(v *checker) {
	t.Plugin.validate(v, "transport")
	if !t.Listen.IsValid() {
		v.fail("transport.listen", "must be an address:port such as 0.0.0.0:7700")
	}
	seen := map[string]bool{t.Name: true}
	for i, e := range t.Extra {
		if !pluginName.MatchString(e.Name) {
			v.fail("transport.extra", "element %d: %q is not a plugin name", i+1, e.Name)
		}
		if seen[e.Name] {
			v.fail("transport.extra", "element %d: transport %s is already configured", i+1, e.Name)
		}
		seen[e.Name] = true
		if e.Advertise.IsValid() {
			if msg := advertiseProblem(e.Advertise); msg != "" {
				v.fail("transport.extra", "element %d: advertise %s %s", i+1, e.Advertise, msg)
			}
		}
	}
	for i, ap := range t.Advertise {
		if msg := advertiseProblem(ap); msg != "" {
			v.fail("transport.advertise", "element %d (%s) %s", i+1, ap, msg)
		}
	}
}

// advertiseProblem says why other nodes could not reach ap, or "".
func advertiseProblem(ap netip.AddrPort) string {
	switch a := ap.Addr(); {
	case !ap.IsValid():
		return "is not a valid address:port"
	case a.IsUnspecified():
		return "is unspecified: advertise an address other nodes can reach"
	case a.IsMulticast():
		return "is a multicast address"
	case ap.Port() == 0:
		return "has port 0: advertise the port the transport listens on"
	}
	return ""
}

func (p *Plugin) validate(v *checker, sec string) {
	if !pluginName.MatchString(p.Name) {
		v.fail(sec+".name", "%q is not a plugin name (letters, digits, '.', '_', '-')", p.Name)
	}
	switch {
	case p.Path != "" && p.SHA256 == "":
		v.failAt(sec+".sha256", sec+".path", "is required with %s.path: the node runs an external plugin only if its SHA-256 matches", sec)
	case p.Path != "" && !hexSHA256.MatchString(p.SHA256):
		v.fail(sec+".sha256", "%q is not a SHA-256 (64 hex digits)", p.SHA256)
	case p.Path == "" && p.SHA256 != "":
		v.fail(sec+".sha256", "is set but %s.path is empty: a builtin plugin needs no hash", sec)
	}
	if p.Path != "" && p.InProcess {
		v.fail(sec+".inprocess", "cannot run the external plugin %s.path in process; only builtin plugins run in process", sec)
	}
}

// validateDeprecated checks the builtin pnat's options that duplicate
// node-wide settings (the core hands its exit policy and resolver
// addresses to the exit adapter at open). They are still read for one
// version, so a bad value is named here with its line, like any other.
func (e *Exit) validateDeprecated(v *checker) {
	if e.Name != "pnat" || e.Path != "" {
		return
	}
	if s, ok := e.Options[pnatPolicyOption]; ok {
		if _, err := exitpolicy.Parse(strings.Split(s, ";")); err != nil {
			v.fail("exit.options."+pnatPolicyOption, "%v (deprecated: use exit.policy)", err)
		}
	}
	if s, ok := e.Options[pnatDNSOption]; ok && strings.TrimSpace(s) != "none" {
		for _, f := range strings.Split(s, ",") {
			if _, err := netip.ParseAddr(strings.TrimSpace(f)); err != nil {
				v.fail("exit.options."+pnatDNSOption, "%q is not an IP address (deprecated: use tunnels.dns)", strings.TrimSpace(f))
			}
		}
	}
}

// The builtin pnat's deprecated option names (plugins/adapter/pnat's
// OptPolicy and OptDNSAddr: config does not import plugins).
const (
	pnatPolicyOption = "policy"
	pnatDNSOption    = "dns_addr"
)
