// Package config reads node.toml into the typed options a Tarzan node is
// built from. The core never sees the file: cmd/tarzan calls Load and
// package host hands the fields on.
//
// Parsing is strict. Unknown keys, wrong types and invalid values are all
// reported with the file, the line and the dotted key, for example
//
//	node.toml:12: transport.listen: "127.0.0.1:99999" is not a valid address:port
//
// and every such error wraps ErrInvalid. Relative paths in the file
// (node.identity, node.data_dir, <plugin>.path) are resolved against the
// directory of the file.
package config

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tarzan-net/tarzan/core/loopcover"
	"github.com/tarzan-net/tarzan/core/node"
	"github.com/tarzan-net/tarzan/sdk/adapter"
)

// Config is a node's configuration. The zero value is not valid; start
// from Default.
type Config struct {
	File string // the path it was loaded from; empty if built in code

	Node      Node
	Mimics    Mimics
	Tunnels   Tunnels
	Transport Transport
	Discovery Plugin
	Cover     Cover
	Adapter   Plugin // client IP adapter (tun, socks); Name "" = none
	Exit      Exit
	Limits    Limits
	Metrics   Metrics // observe_keys.go
}

// Exit is the [exit] section: the exit adapter (the pseudonymous NAT) and
// the exit policy. Used only when node.exit is true.
type Exit struct {
	Plugin
	// Policy is the ordered accept/reject rules, first match wins; empty
	// means the default policy, exitpolicy.Default: "reject private;
	// accept *", where private is every range that is not globally
	// reachable unicast (and IPv4 carried in IPv6 is judged by the IPv4
	// address it carries).
	Policy []string
}

// Cover is the [cover] section: the cover-traffic policy and the node's
// loop-cover detector. The loop settings matter only when the policy asks
// for loops (poisson's loop_rate); they are core/loopcover's Options.Timeout,
// Tunnels, Window and AlertLoss, with the same defaults.
type Cover struct {
	Plugin
	LoopTimeout   time.Duration // a loop not back within this is lost, > 0
	LoopTunnels   int           // tunnels loops are spread over, 1..loopcover.MaxTunnels
	LoopWindow    int           // last loops the detector judges, 1..loopcover.MaxWindow
	LoopAlertLoss float64       // lost share of the window that raises the alert, (0, 1]
}

// Node is the [node] section.
type Node struct {
	Identity           string // Ed25519 identity key file
	DataDir            string // state directory
	Control            string // HTTP control/status API: "unix" (control.sock in DataDir), "unix:PATH" or ip:port
	AllowRemoteControl bool   // permit a non-loopback Control address
	LogLevel           string // debug, info, warn or error
	LogFormat          string // text or json (observe_keys.go)
	PProf              bool   // serve /debug/pprof/ on the control API
	Exit               bool   // run the PNAT exit
	// AllowVariableTimeAES starts the node on a CPU without AES
	// instructions, where onion encryption leaks key bits through timing
	// (core/node's Options.AllowVariableTimeAES).
	AllowVariableTimeAES bool
}

// Limits is the [limits] section: what other hosts can make this node
// hold or compute. The fields are core/node's Options.MaxCircuitsPerLink,
// MaxCircuits, CreateRate and the fields of its AdmissionLimits, with the
// same defaults. Unlike in core/node, zero is never "the default" here
// (Default sets every field): a negative probe or handshake rate, or a
// negative PeerSilence, switches that limit off, and zero is refused.
type Limits struct {
	CircuitsPerLink  int           // relay circuits one link may hold, 1..Circuits
	Circuits         int           // relay circuits all links may hold, CircuitsPerLink..node.MaxCircuitsLimit
	CreateRate       float64       // CREATEs per second per link, (0, node.MaxCreateRate]
	ProbeRate        float64       // probes answered per second per source; < 0: no limit
	ProbeBurst       int           // >= 1
	ProbeGlobalRate  float64       // probes answered per second from all sources; < 0: no limit
	ProbeGlobalBurst int           // >= 1
	HandshakeRate    float64       // link handshake initiations answered per second per source; < 0: no limit
	HandshakeBurst   int           // >= 1
	LimiterSources   int           // sources each per-source limiter tracks, >= 1
	PeerSilence      time.Duration // evict peers silent this long, >= 1s; < 0: never
	OrphanGrace      time.Duration // an exit keeps a circuit that lost its previous hop this long; < 0: not at all
}

// Mimics is the [mimics] section.
type Mimics struct {
	Count int           // k, mimics chosen per epoch, 1..32
	Epoch time.Duration // length of a mimic epoch, >= 1s
}

// Tunnels is the [tunnels] section.
type Tunnels struct {
	Hops         int           // relays per tunnel, 1..4
	IdleTimeout  time.Duration // idle tunnels are torn down after this
	Quiet        time.Duration // traffic stopped this long: check the tunnel end to end
	CheckTimeout time.Duration // a check's pings unanswered this long: repair
	// DNS are the in-tunnel resolver addresses (core/node's
	// Options.DNSAddrs, handed to the adapters at open): client adapters
	// send names there, exits answer them. Default adapter.DefaultDNS.
	DNS []netip.Addr
}

// Transport is the [transport] section: a plugin plus where it listens.
type Transport struct {
	Plugin
	Listen netip.AddrPort
	// Advertise lists the addresses put in the node's descriptor. Empty
	// means the bound listen address, which the node can only use if it is
	// not unspecified (0.0.0.0 or ::).
	Advertise []netip.AddrPort
	// Extra are further builtin transports, in preference order after the
	// main one, each "NAME LISTEN [ADVERTISE]" (transport.extra).
	Extra []ExtraTransport
}

// ExtraTransport is one more builtin transport the node runs and
// advertises, with default options.
type ExtraTransport struct {
	Name      string
	Listen    netip.AddrPort
	Advertise netip.AddrPort // zero: the bound listen address
}

// ParseExtraTransport reads "NAME LISTEN [ADVERTISE]".
func ParseExtraTransport(s string) (ExtraTransport, error) {
	f := strings.Fields(s)
	if len(f) < 2 || len(f) > 3 {
		return ExtraTransport{}, fmt.Errorf("%q: want \"NAME LISTEN [ADVERTISE]\", e.g. \"kcp 0.0.0.0:7702\"", s)
	}
	e := ExtraTransport{Name: f[0]}
	var err error
	if e.Listen, err = parseAddrPort(f[1]); err != nil {
		return e, err
	}
	if len(f) == 3 {
		if e.Advertise, err = parseAddrPort(f[2]); err != nil {
			return e, err
		}
	}
	return e, nil
}

func (e ExtraTransport) String() string {
	s := e.Name + " " + e.Listen.String()
	if e.Advertise.IsValid() {
		s += " " + e.Advertise.String()
	}
	return s
}

// Plugin selects and configures one plugin.
type Plugin struct {
	Name      string            // registered name, e.g. "udp"
	InProcess bool              // run a builtin plugin inside the node process
	Path      string            // external plugin executable; empty for a builtin
	SHA256    string            // hex SHA-256 of Path; required with Path
	Options   map[string]string // handed to the plugin; arrays joined with ","
}

// Default returns the configuration used for every key a file leaves out.
// Its paths are relative; Load resolves them against the file.
func Default() *Config {
	return &Config{
		Node: Node{
			Identity:  "identity.key",
			DataDir:   ".",
			Control:   ControlUnix,
			LogLevel:  "info",
			LogFormat: "text",
		},
		Mimics: Mimics{Count: node.DefaultMimicCount, Epoch: 24 * time.Hour},
		Tunnels: Tunnels{Hops: node.DefaultTunnelHops, IdleTimeout: 10 * time.Minute, Quiet: node.DefaultTunnelQuiet, CheckTimeout: node.DefaultTunnelCheckTimeout,
			DNS: adapter.DefaultDNS()},
		Transport: Transport{
			Plugin:    Plugin{Name: "udp", Options: map[string]string{}},
			Listen:    netip.MustParseAddrPort("0.0.0.0:7700"),
			Advertise: []netip.AddrPort{},
			Extra:     []ExtraTransport{},
		},
		Discovery: Plugin{Name: "static", Options: map[string]string{}},
		Cover: Cover{
			Plugin:        Plugin{Name: "none", Options: map[string]string{}},
			LoopTimeout:   loopcover.DefaultTimeout,
			LoopTunnels:   loopcover.DefaultTunnels,
			LoopWindow:    loopcover.DefaultWindow,
			LoopAlertLoss: loopcover.DefaultAlertLoss,
		},
		Adapter: Plugin{Name: "", Options: map[string]string{}},
		Exit:    Exit{Plugin: Plugin{Name: "pnat", Options: map[string]string{}}, Policy: []string{}},
		Limits: Limits{
			CircuitsPerLink:  node.DefaultMaxCircuitsPerLink,
			Circuits:         node.DefaultMaxCircuits,
			CreateRate:       node.DefaultCreateRate,
			ProbeRate:        node.DefaultProbeRate,
			ProbeBurst:       node.DefaultProbeBurst,
			ProbeGlobalRate:  node.DefaultProbeGlobalRate,
			ProbeGlobalBurst: node.DefaultProbeGlobalBurst,
			HandshakeRate:    node.DefaultHandshakeRate,
			HandshakeBurst:   node.DefaultHandshakeBurst,
			LimiterSources:   node.DefaultLimiterSources,
			PeerSilence:      node.DefaultPeerSilence,
			OrphanGrace:      node.DefaultOrphanGrace,
		},
	}
}

// Load reads, parses and validates the file at path. Relative paths in
// it are resolved against the file's directory.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	dir, err := filepath.Abs(filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("config: locating %s: %w", path, err)
	}
	return parse(path, data, dir)
}

// Parse parses and validates data as if read from the file name; name is
// used in error messages, and relative paths are resolved against its
// directory.
func Parse(name string, data []byte) (*Config, error) {
	return parse(name, data, filepath.Dir(name))
}

// Validate checks c as Load would (without line numbers: c has no file
// text). Use it on a Config assembled in code.
func (c *Config) Validate() error {
	v := &checker{file: c.File}
	c.validate(v)
	return v.err()
}

// resolve makes the file's relative paths relative to dir instead.
func (c *Config) resolve(dir string) {
	for _, p := range []*string{&c.Node.Identity, &c.Node.DataDir, &c.Transport.Path, &c.Discovery.Path, &c.Cover.Path, &c.Adapter.Path, &c.Exit.Path} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
}
