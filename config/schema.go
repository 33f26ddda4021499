package config

// The schema: every key node.toml may hold, in file order, with the
// comment Write puts above it and how its value is read and written.
// Parse rejects any key not listed here (except inside <plugin>.options),
// so adding a key means adding it here, to validate.go and to node.toml.

import (
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tarzan-net/tarzan/core/loopcover"
	"github.com/tarzan-net/tarzan/core/node"
)

type section struct {
	name   string
	doc    string
	fields []field
}

type field struct {
	key    string // dotted, e.g. "mimics.count"
	doc    string
	decode func(c *Config, v any) error // v as BurntSushi/toml decodes into map[string]any
	encode func(c *Config) string       // the value as TOML
	table  bool                         // a free-form [x.options] table, written last
}

var schema = []section{
	{name: "node", doc: "This node: its identity, state and local control API.", fields: []field{
		stringField("node.identity", func(c *Config) *string { return &c.Node.Identity },
			"Ed25519 identity key file. The node ID is a hash of this key: keep the file,\n"+
				"or the network sees a new node. `tarzan init` creates it. A relative path is\n"+
				"resolved against this file's directory."),
		stringField("node.data_dir", func(c *Config) *string { return &c.Node.DataDir },
			"Directory for the node's state (peer view, rotated onion keys). Relative to\n"+
				"this file's directory."),
		stringField("node.control", func(c *Config) *string { return &c.Node.Control },
			"Where the HTTP control and status API listens: \"unix\" (a Unix socket,\n"+
				"control.sock in data_dir, mode 0600: only this user can connect),\n"+
				"\"unix:PATH\", or IP:port (port 0 picks a free one), where every request\n"+
				"must carry the cookie in data_dir/control.cookie (mode 0600). The API shows\n"+
				"and builds this node's tunnels, so an IP must be a loopback address unless\n"+
				"allow_remote_control = true (docs/CONTROL.md)."),
		boolField("node.allow_remote_control", func(c *Config) *bool { return &c.Node.AllowRemoteControl },
			"Permit a non-loopback control address. Only behind a firewall you trust."),
		stringField("node.log_level", func(c *Config) *string { return &c.Node.LogLevel },
			"One of debug, info, warn, error. Peer addresses appear only at debug; key\n"+
				"material never."),
		boolField("node.exit", func(c *Config) *bool { return &c.Node.Exit },
			"Act as an exit: run the pseudonymous NAT that sends tunnel traffic to\n"+
				"Internet servers under this node's address. The default exit policy still\n"+
				"rejects every destination that is not globally reachable unicast (see\n"+
				"exit.policy), and the exit never connects a client to its own host."),
		boolField("node.allow_variable_time_aes", func(c *Config) *bool { return &c.Node.AllowVariableTimeAES },
			"Start even on a CPU without AES instructions (no AES-NI or ARMv8 AES, or\n"+
				"GODEBUG=cpu.aes=off). There Go's AES runs in variable time, and this\n"+
				"WEAKENS THE ONION CRYPTO AGAINST TIMING ATTACKS: anyone who can time this\n"+
				"node's cell processing may learn its onion keys. Without this setting the\n"+
				"node refuses to start on such a CPU; on a CPU with AES instructions it\n"+
				"changes nothing. Only for such CPUs (emulators, old or small hardware),\n"+
				"and never for a node others rely on."),
	}},
	{name: "mimics", doc: "Mimics: the peers this node exchanges traffic and cover with. Traffic\nonly ever crosses mimic links.", fields: []field{
		intField("mimics.count", func(c *Config) *int { return &c.Mimics.Count },
			"k, the mimics this node picks per epoch, 1..32. Mimicry is symmetric, so a\n"+
				"node ends up with about 2k links; more means more relay choices and more\n"+
				"cover traffic."),
		durationField("mimics.epoch", func(c *Config) *time.Duration { return &c.Mimics.Epoch },
			"How long a mimic assignment lasts: a Go duration such as \"24h\" or \"90m\",\n"+
				"at least \"1s\". Every node in a network must use the same value, since\n"+
				"mimics are a function of node identity and floor(time / epoch)."),
	}},
	{name: "tunnels", doc: "Tunnels this node builds as an originator.", fields: []field{
		intField("tunnels.hops", func(c *Config) *int { return &c.Tunnels.Hops },
			"Relays per tunnel, 1..4. With 3 no single relay knows both ends of a\n"+
				"connection; fewer hops trade anonymity for latency."),
		durationField("tunnels.idle_timeout", func(c *Config) *time.Duration { return &c.Tunnels.IdleTimeout },
			"A tunnel that carries no traffic for this long is torn down (Go duration,\n"+
				"greater than zero)."),
		durationField("tunnels.quiet", func(c *Config) *time.Duration { return &c.Tunnels.Quiet },
			"A tunnel whose traffic stopped this long (data sent and nothing back, or a\n"+
				"download from the exit that stalled) is checked end to end: one ping to\n"+
				"each hop, 1 to 1.5 times this long after its last cell. At least \"100ms\"."),
		durationField("tunnels.check_timeout", func(c *Config) *time.Duration { return &c.Tunnels.CheckTimeout },
			"How long a check waits for its pings. The first hop that does not answer\n"+
				"is replaced, and the exit kept when it still answers, so TCP connections\n"+
				"through the tunnel survive a relay's death. At least \"100ms\"."),
		addrListField("tunnels.dns", func(c *Config) *[]netip.Addr { return &c.Tunnels.DNS },
			"In-tunnel resolver addresses, IPv4 first. The client adapter sends DNS\n"+
				"queries there; an exit answers queries to them with its own resolver,\n"+
				"whatever its policy says about the range. Every node of a network should\n"+
				"use the same (docs/PROTOCOL.md §10); at least one address."),
	}},
	{name: "transport", doc: "Transport plugin: how link frames move between nodes.", fields: append([]field{
		stringField("transport.name", func(c *Config) *string { return &c.Transport.Name },
			"Transport plugin: udp (builtin, the default), dtls, kcp, or the name of an\n"+
				"external plugin given by path."),
		addrPortField("transport.listen", func(c *Config) *netip.AddrPort { return &c.Transport.Listen },
			"Address (IP:port) the transport binds. 0.0.0.0 or [::] listens on every\n"+
				"address; [::] also accepts IPv4 where the system is dual-stack."),
		addrPortListField("transport.advertise", func(c *Config) *[]netip.AddrPort { return &c.Transport.Advertise },
			"Addresses (IP:port) put in this node's signed descriptor for other nodes to\n"+
				"reach it. Empty means the listen address, which only works if that is not\n"+
				"0.0.0.0 or [::]. Peers check that the node answers at each one before\n"+
				"admitting it."),
		field{key: "transport.extra", doc: "More builtin transports to run and advertise, in preference order after\n" +
			"the main one: \"NAME LISTEN [ADVERTISE]\", e.g. [\"udp 0.0.0.0:7700\"]. With\n" +
			"each mimic the node uses the first transport both advertise.",
			decode: func(c *Config, v any) error {
				list, ok := v.([]any)
				if !ok {
					return typeError(`an array of "NAME LISTEN [ADVERTISE]" strings`, v)
				}
				out := make([]ExtraTransport, 0, len(list))
				for i, e := range list {
					s, ok := e.(string)
					if !ok {
						return fmt.Errorf("element %d: %w", i+1, typeError("a string", e))
					}
					x, err := ParseExtraTransport(s)
					if err != nil {
						return fmt.Errorf("element %d: %w", i+1, err)
					}
					out = append(out, x)
				}
				c.Transport.Extra = out
				return nil
			},
			encode: func(c *Config) string {
				parts := make([]string, len(c.Transport.Extra))
				for i, e := range c.Transport.Extra {
					parts[i] = quote(e.String())
				}
				return "[" + strings.Join(parts, ", ") + "]"
			},
		},
	}, pluginFields("transport", func(c *Config) *Plugin { return &c.Transport.Plugin })...)},
	{name: "discovery", doc: "Discovery plugin: how this node learns of other nodes. Discovery only\nproposes peers; the node admits one after checking its signed descriptor\nand that it answers at its advertised address.", fields: append([]field{
		stringField("discovery.name", func(c *Config) *string { return &c.Discovery.Name },
			"static (a fixed bootstrap list in options.peers) or gossip (Tarzan-style\n"+
				"membership), or the name of an external plugin given by path."),
	}, pluginFields("discovery", func(c *Config) *Plugin { return &c.Discovery })...)},
	{name: "cover", doc: "Cover-traffic policy: when links send padding so that an observer cannot\ntell originators from relays.", fields: append([]field{
		stringField("cover.name", func(c *Config) *string { return &c.Cover.Name },
			"none (send data at once and nothing else), constant, balanced (Tarzan's\n"+
				"invariant), poisson (Loopix-like), or the name of an external plugin."),
	}, append(pluginFields("cover", func(c *Config) *Plugin { return &c.Cover.Plugin }),
		durationField("cover.loop_timeout", func(c *Config) *time.Duration { return &c.Cover.LoopTimeout },
			"Loop cover: only used when the policy asks for loops (poisson's\n"+
				"options.loop_rate > 0); the node then sends cells through tunnels of its\n"+
				"own to their last hop and back, and warns when too many do not return (a\n"+
				"relay or link dropping or delaying its traffic). A loop whose reply is not\n"+
				"back within loop_timeout is lost (Go duration, greater than zero). Shorter\n"+
				"notices a dropping relay sooner; too short counts slow paths as lost."),
		intField("cover.loop_tunnels", func(c *Config) *int { return &c.Cover.LoopTunnels },
			"Tunnels of this node's own that loops are spread over, 1.."+strconv.Itoa(loopcover.MaxTunnels)+". A relay on\n"+
				"one of them costs about 1/loop_tunnels of the loops, so more tunnels\n"+
				"sample more paths but need a lower loop_alert_loss to catch one relay."),
		intField("cover.loop_window", func(c *Config) *int { return &c.Cover.LoopWindow },
			"How many of the last loops the detector judges, 1.."+strconv.Itoa(loopcover.MaxWindow)+"; no alert before\n"+
				"that many have returned or been lost. Larger is steadier but slower."),
		floatField("cover.loop_alert_loss", func(c *Config) *float64 { return &c.Cover.LoopAlertLoss },
			"Share of the last loop_window loops that must be lost to raise the alert,\n"+
				"greater than 0 and at most 1. The alert logs a warning naming the hops,\n"+
				"avoids them for 30 minutes and rebuilds the loop tunnels through them.\n"+
				"Lower catches partial loss (a relay on one of two tunnels loses about half)\n"+
				"sooner and more surely, at the price of alerts when a relay merely fails\n"+
				"or a link is lossy."),
	)...)},
	{name: "adapter", doc: "Client IP adapter: how local applications reach the network through\ntunnels. Empty name: this node only relays (and exits, if node.exit).", fields: append([]field{
		stringField("adapter.name", func(c *Config) *string { return &c.Adapter.Name },
			"\"\" (none), socks (a SOCKS5 port, no root needed: options.listen, default\n"+
				"127.0.0.1:1080) or tun (a kernel TUN device that routes the host's traffic\n"+
				"into tunnels; needs root)."),
	}, pluginFields("adapter", func(c *Config) *Plugin { return &c.Adapter })...)},
	{name: "exit", doc: "Exit: the pseudonymous NAT that sends tunnel traffic to servers under\nthis node's address, when node.exit = true.", fields: append([]field{
		stringField("exit.name", func(c *Config) *string { return &c.Exit.Name },
			"Exit adapter plugin: pnat (builtin; a userspace stack, no root needed)."),
		stringListField("exit.policy", func(c *Config) *[]string { return &c.Exit.Policy },
			"Exit policy: ordered rules, first match wins, e.g.\n"+
				"[\"reject private\", \"accept *:80,443\", \"reject *:*\"]. Empty means the\n"+
				"default, \"reject private; accept *\". \"private\" is every range that is not\n"+
				"globally reachable unicast: loopback, RFC 1918, CGNAT, link-local,\n"+
				"multicast, reserved (0/8, 192.0.0/24, 240/4, 255.255.255.255),\n"+
				"documentation and benchmarking ranges; for IPv6 also ::, discard-only,\n"+
				"NAT64 local-use, unique local and site-local (docs/PROTOCOL.md §10). An IPv6\n"+
				"destination that carries an IPv4 address (IPv4-mapped or -compatible,\n"+
				"NAT64, 6to4, Teredo, ISATAP) is accepted only if that IPv4 address is too.\n"+
				"A policy of your own should start with \"reject private\": nothing else\n"+
				"keeps clients off your local networks. A summary is published in the\n"+
				"descriptor so clients pick exits that accept their destination."),
	}, pluginFields("exit", func(c *Config) *Plugin { return &c.Exit.Plugin })...)},
	{name: "limits", doc: "Limits on what other hosts can make this node hold or compute. The circuit\n" +
		"and rate limits are checked before any public-key work, so going over one\n" +
		"costs this node a table lookup, not a signature or a key agreement; what\n" +
		"they refuse is counted in `tarzan status` (drop_*). The defaults are far\n" +
		"above what honest peers need. The probe and handshake rates and\n" +
		"peer_silence can be switched off with a negative value (-1.0, \"-1s\"); the\n" +
		"circuit limits and create_rate cannot. 0 is refused everywhere.", fields: []field{
		intField("limits.circuits_per_link", func(c *Config) *int { return &c.Limits.CircuitsPerLink },
			"Relay circuits one mimic link may hold open at this node, 1..circuits. A\n"+
				"CREATE past it is refused before any key work and answered with DESTROY\n"+
				"(out of resources; drop_create_limit): one mimic cannot take the whole\n"+
				"node's share. Cannot be switched off."),
		intField("limits.circuits", func(c *Config) *int { return &c.Limits.Circuits },
			"Relay circuits all links together may hold open at this node,\n"+
				"circuits_per_link.."+strconv.Itoa(node.MaxCircuitsLimit)+". A circuit costs about 1 KiB: the default\n"+
				"holds about 16 MiB. Cannot be switched off."),
		floatField("limits.create_rate", func(c *Config) *float64 { return &c.Limits.CreateRate },
			"Tunnel handshakes (CREATEs) one mimic link may make this node do per\n"+
				"second, in bursts of up to twice as many; greater than 0 and at most\n"+
				strconv.Itoa(node.MaxCreateRate)+". A handshake costs about 0.15 ms of CPU, so the default is 1% of\n"+
				"a core per link. Without it a mimic that opens and closes circuits in turn\n"+
				"costs a key agreement per frame. Over it a CREATE is refused like one over\n"+
				"the circuit limits (drop_create_rate). Cannot be switched off."),
		floatField("limits.probe_rate", func(c *Config) *float64 { return &c.Limits.ProbeRate },
			"Reachability probes answered per second from one source (an IPv4 address\n"+
				"or IPv6 /64): a token bucket of probe_burst tokens refilled at this rate.\n"+
				"Answering costs a signature check and a signature; an honest peer probes a\n"+
				"node a few times while it joins, then once every few minutes. Over it a\n"+
				"probe is dropped unanswered (drop_probe_ratelimit). Negative: no limit."),
		intField("limits.probe_burst", func(c *Config) *int { return &c.Limits.ProbeBurst },
			"Probes one source may send at once before probe_rate applies, at least 1."),
		floatField("limits.probe_global_rate", func(c *Config) *float64 { return &c.Limits.ProbeGlobalRate },
			"Probes answered per second from all sources together, against floods from\n"+
				"many (spoofed) addresses; checked after the source's own budget, so one\n"+
				"source cannot use it up. Negative: no limit."),
		intField("limits.probe_global_burst", func(c *Config) *int { return &c.Limits.ProbeGlobalBurst },
			"Probes from all sources answered at once before probe_global_rate applies,\n"+
				"at least 1."),
		floatField("limits.handshake_rate", func(c *Config) *float64 { return &c.Limits.HandshakeRate },
			"Link handshake initiations answered per second from one source, before the\n"+
				"key agreement they cost. A source is the exact address (IP and port) a\n"+
				"current mimic is known at, so others on its host cannot starve it, or else\n"+
				"an IPv4 address or IPv6 /64. Initiations from addresses no mimic has are\n"+
				"refused before this. An honest mimic initiates at most every 250 ms. Over\n"+
				"it: drop_handshake_ratelimit. Negative: no limit."),
		intField("limits.handshake_burst", func(c *Config) *int { return &c.Limits.HandshakeBurst },
			"Initiations one source may send at once before handshake_rate applies, at\n"+
				"least 1."),
		intField("limits.limiter_sources", func(c *Config) *int { return &c.Limits.LimiterSources },
			"Sources the per-source probe and handshake limits each keep a bucket for,\n"+
				"and evicted peers kept to probe again, at least 1. Past it, new sources\n"+
				"share one bucket until idle ones are dropped. Memory grows with it: the\n"+
				"default takes a few hundred KiB."),
		durationField("limits.peer_silence", func(c *Config) *time.Duration { return &c.Limits.PeerSilence },
			"An admitted peer not heard from for this long (no proof answering a probe,\n"+
				"no authenticated frame on a link) is evicted, so this node's mimic choices\n"+
				"stop counting peers that left. A quiet peer is probed from a third of it\n"+
				"on, so one that is still there stays. Go duration, at least \"1s\"; a\n"+
				"negative one (\"-1s\") switches eviction off, and peers then leave only\n"+
				"when their descriptors expire (up to 7 days)."),
		durationField("limits.orphan_grace", func(c *Config) *time.Duration { return &c.Limits.OrphanGrace },
			"How long this node, as an exit, keeps a circuit and its connections after\n"+
				"the circuit's previous relay went away, waiting for the client to rejoin\n"+
				"it through a repaired path (circuits_orphaned). Negative: not at all, the\n"+
				"connections end with the relay."),
	}},
}

func stringListField(key string, p func(*Config) *[]string, doc string) field {
	return field{key: key, doc: doc,
		decode: func(c *Config, v any) error {
			list, ok := v.([]any)
			if !ok {
				return typeError("an array of strings", v)
			}
			out := make([]string, 0, len(list))
			for i, e := range list {
				s, ok := e.(string)
				if !ok {
					return fmt.Errorf("element %d: %w", i+1, typeError("a string", e))
				}
				out = append(out, s)
			}
			*p(c) = out
			return nil
		},
		encode: func(c *Config) string {
			parts := make([]string, len(*p(c)))
			for i, s := range *p(c) {
				parts[i] = quote(s)
			}
			return "[" + strings.Join(parts, ", ") + "]"
		},
	}
}

// pluginFields are the keys every plugin section shares after name.
func pluginFields(sec string, p func(*Config) *Plugin) []field {
	return []field{
		boolField(sec+".inprocess", func(c *Config) *bool { return &p(c).InProcess },
			"Run the builtin plugin inside the node process instead of as a child\n"+
				"process: no IPC on the data path, but a plugin crash then takes the node\n"+
				"down. Not allowed with path."),
		stringField(sec+".path", func(c *Config) *string { return &p(c).Path },
			"Executable of an external plugin, run as a child process; empty for the\n"+
				"builtin plugin called name. Relative to this file's directory."),
		stringField(sec+".sha256", func(c *Config) *string { return &p(c).SHA256 },
			"SHA-256 of the executable at path, 64 hex digits (`sha256sum`); required\n"+
				"with path. The node refuses to start a plugin that does not match."),
		optionsField(sec+".options", func(c *Config) *map[string]string { return &p(c).Options },
			"Settings handed to the plugin as strings. A value is a string or an array\n"+
				"of strings; an array reaches the plugin joined with \",\"."),
	}
}

func stringField(key string, p func(*Config) *string, doc string) field {
	return field{key: key, doc: doc,
		decode: func(c *Config, v any) error {
			s, ok := v.(string)
			if !ok {
				return typeError("a string", v)
			}
			*p(c) = s
			return nil
		},
		encode: func(c *Config) string { return quote(*p(c)) },
	}
}

func boolField(key string, p func(*Config) *bool, doc string) field {
	return field{key: key, doc: doc,
		decode: func(c *Config, v any) error {
			b, ok := v.(bool)
			if !ok {
				return typeError("true or false", v)
			}
			*p(c) = b
			return nil
		},
		encode: func(c *Config) string { return strconv.FormatBool(*p(c)) },
	}
}

func intField(key string, p func(*Config) *int, doc string) field {
	return field{key: key, doc: doc,
		decode: func(c *Config, v any) error {
			i, ok := v.(int64)
			if !ok {
				return typeError("an integer", v)
			}
			if i < math.MinInt32 || i > math.MaxInt32 {
				return fmt.Errorf("%d is out of range", i)
			}
			*p(c) = int(i)
			return nil
		},
		encode: func(c *Config) string { return strconv.Itoa(*p(c)) },
	}
}

func floatField(key string, p func(*Config) *float64, doc string) field {
	return field{key: key, doc: doc,
		decode: func(c *Config, v any) error {
			switch f := v.(type) {
			case float64:
				*p(c) = f
			case int64: // "1" is a TOML integer
				*p(c) = float64(f)
			default:
				return typeError("a number such as 0.5", v)
			}
			return nil
		},
		encode: func(c *Config) string { return formatFloat(*p(c)) },
	}
}

// formatFloat writes f as a TOML float: always with a fraction or an
// exponent, so that it reads back as a float.
func formatFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

func durationField(key string, p func(*Config) *time.Duration, doc string) field {
	return field{key: key, doc: doc,
		decode: func(c *Config, v any) error {
			s, ok := v.(string)
			if !ok {
				return typeError(`a duration string such as "24h" or "90s"`, v)
			}
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf(`%q is not a duration (write e.g. "24h", "10m", "1h30m")`, s)
			}
			*p(c) = d
			return nil
		},
		encode: func(c *Config) string { return quote(formatDuration(*p(c))) },
	}
}

func addrPortField(key string, p func(*Config) *netip.AddrPort, doc string) field {
	return field{key: key, doc: doc,
		decode: func(c *Config, v any) error {
			s, ok := v.(string)
			if !ok {
				return typeError(`an "address:port" string`, v)
			}
			ap, err := parseAddrPort(s)
			if err != nil {
				return err
			}
			*p(c) = ap
			return nil
		},
		encode: func(c *Config) string { return quote(p(c).String()) },
	}
}

func addrListField(key string, p func(*Config) *[]netip.Addr, doc string) field {
	return field{key: key, doc: doc,
		decode: func(c *Config, v any) error {
			list, ok := v.([]any)
			if !ok {
				return typeError(`an array of address strings`, v)
			}
			as := make([]netip.Addr, 0, len(list))
			for i, e := range list {
				s, ok := e.(string)
				if !ok {
					return fmt.Errorf("element %d: %w", i+1, typeError(`an address string`, e))
				}
				a, err := netip.ParseAddr(s)
				if err != nil || a.Zone() != "" {
					return fmt.Errorf("element %d: %q is not an IP address", i+1, s)
				}
				as = append(as, a.Unmap())
			}
			*p(c) = as
			return nil
		},
		encode: func(c *Config) string {
			parts := make([]string, len(*p(c)))
			for i, a := range *p(c) {
				parts[i] = quote(a.String())
			}
			return "[" + strings.Join(parts, ", ") + "]"
		},
	}
}

func addrPortListField(key string, p func(*Config) *[]netip.AddrPort, doc string) field {
	return field{key: key, doc: doc,
		decode: func(c *Config, v any) error {
			list, ok := v.([]any)
			if !ok {
				return typeError(`an array of "address:port" strings`, v)
			}
			aps := make([]netip.AddrPort, 0, len(list))
			for i, e := range list {
				s, ok := e.(string)
				if !ok {
					return fmt.Errorf("element %d: %w", i+1, typeError(`an "address:port" string`, e))
				}
				ap, err := parseAddrPort(s)
				if err != nil {
					return fmt.Errorf("element %d: %w", i+1, err)
				}
				aps = append(aps, ap)
			}
			*p(c) = aps
			return nil
		},
		encode: func(c *Config) string {
			parts := make([]string, len(*p(c)))
			for i, ap := range *p(c) {
				parts[i] = quote(ap.String())
			}
			return "[" + strings.Join(parts, ", ") + "]"
		},
	}
}

// optionsField reads a free-form table of strings and string arrays; its
// keys are the plugin's business, so any key is accepted.
func optionsField(key string, p func(*Config) *map[string]string, doc string) field {
	return field{key: key, doc: doc, table: true,
		decode: func(c *Config, v any) error {
			t, ok := v.(map[string]any)
			if !ok {
				return typeError("a table", v)
			}
			opts := make(map[string]string, len(t))
			for k, e := range t {
				s, err := optionValue(e)
				if err != nil {
					return &keyError{key: k, err: err}
				}
				opts[k] = s
			}
			*p(c) = opts
			return nil
		},
	}
}

func optionValue(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				return "", fmt.Errorf("element %d: %w", i+1, typeError("a string", e))
			}
			if strings.Contains(s, ",") {
				return "", fmt.Errorf("element %d (%q) contains \",\", which separates array elements when handed to the plugin", i+1, s)
			}
			parts[i] = s
		}
		return strings.Join(parts, ","), nil
	}
	return "", fmt.Errorf("%w (plugin options are strings: quote the value)", typeError("a string or an array of strings", v))
}

// keyError is a decode error that belongs to a key below the field's own
// (an entry of an options table).
type keyError struct {
	key string
	err error
}

func (e *keyError) Error() string { return e.err.Error() }

func typeError(want string, v any) error {
	return fmt.Errorf("must be %s, not %s", want, tomlType(v))
}

func tomlType(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", v)
	case int64:
		return fmt.Sprintf("the integer %d", v)
	case float64:
		return "a float"
	case bool:
		return fmt.Sprintf("%t", v)
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case time.Time:
		return "a date-time"
	}
	return fmt.Sprintf("%T", v)
}

func parseAddrPort(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q is not a valid address:port", s)
	}
	return ap, nil
}

// formatDuration drops the zero units time.Duration.String adds:
// 24h0m0s → 24h, 10m0s → 10m.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
