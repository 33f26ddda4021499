package sidebyside

import (
	"bufio"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"strings"
)

// The private Tor network's configuration, as chutney's "basic" network
// writes it: TestingTorNetwork with the rapid-bootstrap options, three
// directory authorities voting every 10 s, relays that may exit to
// loopback, and one client with a SOCKS port and a control port. Pure
// functions, so that they are tested without tor.

// TorRole is what one tor process of the network does.
type TorRole int

const (
	TorAuthority TorRole = iota // directory authority (a non-exit relay too)
	TorExit                     // relay that exits to 127.0.0.0/8
	TorRelay                    // relay that never exits
	TorClient                   // SOCKS port and control port; no relay
)

func (r TorRole) String() string {
	return [...]string{"authority", "exit", "relay", "client"}[r]
}

// TorNodeConf is one tor process's configuration.
type TorNodeConf struct {
	Nick    string
	Role    TorRole
	Addr    netip.Addr // where it listens (loopback)
	ORPort  uint16     // relays and authorities
	DirPort uint16     // authorities
	SOCKS   uint16     // client
	Control uint16     // client
	DataDir string     // absolute
	// Set for authorities once their keys exist:
	V3Ident     string // v3 identity fingerprint (from authority_certificate)
	Fingerprint string // relay identity fingerprint (DataDir/fingerprint)
}

// DirAuthorityLine is the torrc line that names authority a to every
// node of the network.
func (a TorNodeConf) DirAuthorityLine() string {
	return fmt.Sprintf("DirAuthority %s orport=%d no-v2 v3ident=%s %s:%d %s",
		a.Nick, a.ORPort, a.V3Ident, a.Addr, a.DirPort, a.Fingerprint)
}

// Torrc is node n's torrc in a network whose authorities are auths and
// vote every voting seconds once the first consensus exists (before it,
// every 5 s).
func Torrc(n TorNodeConf, auths []TorNodeConf, voting int, extra ...string) string {
	var b strings.Builder
	line := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	line("# private Tor network on loopback (tarzan bench compare): %s, %s", n.Nick, n.Role)
	line("TestingTorNetwork 1")
	// Rapid bootstrap (chutney's common.i).
	line("AssumeReachable 1")
	line("PathsNeededToBuildCircuits 0.25")
	line("TestingDirAuthVoteExit *")
	line("TestingDirAuthVoteGuard *")
	line("TestingMinExitFlagThreshold 0")
	line("V3AuthNIntervalsValid 2")
	line("DataDirectory %s", n.DataDir)
	line("RunAsDaemon 0")
	line("Nickname %s", n.Nick)
	line("ShutdownWaitLength 0")
	line("Log notice file %s/notice.log", n.DataDir)
	line("SafeLogging 0")
	line("ProtocolWarnings 1")
	// No GeoIP database: parsing it costs each process seconds of CPU at
	// start and nothing here needs countries.
	line("GeoIPFile %s/geoip-none", n.DataDir)
	line("GeoIPv6File %s/geoip-none", n.DataDir)
	for _, a := range auths {
		line("%s", a.DirAuthorityLine())
	}
	for _, e := range extra {
		line("%s", e)
	}
	switch n.Role {
	case TorClient:
		line("SocksPort %s:%d", n.Addr, n.SOCKS)
		line("ControlPort %s:%d", n.Addr, n.Control)
		line("CookieAuthentication 1")
		// Full descriptors: a microdescriptor's exit policy summary says
		// nothing of 127.0.0.0/8, so with microdescriptors the client finds
		// no exit for a loopback server unless the exits accept the whole
		// internet (chutney's choice). Here they accept loopback only.
		line("UseMicrodescriptors 0")
		return b.String()
	case TorAuthority:
		line("AuthoritativeDirectory 1")
		line("V3AuthoritativeDirectory 1")
		line("ContactInfo %s@test.test", n.Nick)
		line("TestingV3AuthInitialVotingInterval 5")
		line("V3AuthVotingInterval %d", voting)
		line("TestingV3AuthInitialVoteDelay 2")
		line("V3AuthVoteDelay 2")
		line("TestingV3AuthInitialDistDelay 2")
		line("V3AuthDistDelay 2")
		line("DirPort %s:%d", n.Addr, n.DirPort)
	}
	line("SocksPort 0")
	line("Address %s", n.Addr)
	line("ORPort %s:%d", n.Addr, n.ORPort)
	if n.Role == TorExit {
		line("ExitRelay 1")
		line("ExitPolicyRejectPrivate 0")
		line("ExitPolicy accept 127.0.0.0/8:*")
		line("ExitPolicy reject *:*")
	} else {
		line("ExitRelay 0")
		line("ExitPolicy reject *:*")
	}
	return b.String()
}

// TorPlan is the shape of the private Tor network: nodes names of the
// given roles, in this order: authorities, exits, relays, the client.
type TorPlan struct {
	Authorities, Exits, Relays int
	// VotingInterval is the authorities' voting interval in seconds
	// after the first consensus (V3AuthVotingInterval; it must divide 30
	// minutes and exceed 4 s). Every relay and the client fetch each new
	// consensus, so it sets much of an idle Tor network's CPU.
	VotingInterval int
	// Scheduler is every tor's cell scheduler: "vanilla" (Schedulers
	// Vanilla: cells are written as soon as a connection can take them)
	// or "kist" (tor's default, KIST,KISTLite,Vanilla: cells wait for the
	// scheduler's tick, every 2–10 ms). KIST's ticks are small beside a
	// real network's round trips (tens to hundreds of ms) but dominate a
	// circuit's round trip on loopback (well under 1 ms), where congestion
	// control (Vegas, proposal 324) takes the waits for queueing and
	// keeps the circuit's window small: measured here, KIST gave 0.4–6 MB/s
	// for one 16 MiB fetch, Vanilla 3.6–8 MB/s on the same machine and
	// load (D46 in docs/DECISIONS.md).
	Scheduler string
	// Extra are torrc lines every node gets (after the defaults).
	Extra []string
}

// DefaultTorPlan has as many processes as the Tarzan side's 12 nodes:
// 3 authorities (relaying, never exiting), 8 exits and the client.
var DefaultTorPlan = TorPlan{Authorities: 3, Exits: 8, VotingInterval: 60, Scheduler: "vanilla"}

func (p TorPlan) schedulerName() string {
	if p.Scheduler == "vanilla" {
		return "Vanilla (-tor-scheduler)"
	}
	return "KIST (tor's default)"
}

// torrcExtra is what every node's torrc gets beyond Torrc's defaults.
func (p TorPlan) torrcExtra() []string {
	var out []string
	if p.Scheduler == "vanilla" {
		out = append(out, "Schedulers Vanilla")
	}
	return append(out, p.Extra...)
}

// Roles lists every node's role in order, the client last.
func (p TorPlan) Roles() []TorRole {
	var r []TorRole
	for range p.Authorities {
		r = append(r, TorAuthority)
	}
	for range p.Exits {
		r = append(r, TorExit)
	}
	for range p.Relays {
		r = append(r, TorRelay)
	}
	return append(r, TorClient)
}

// Check says what is wrong with the plan, if anything.
func (p TorPlan) Check() error {
	if p.Authorities < 1 || p.Exits < 1 || p.Authorities+p.Exits+p.Relays < 3 {
		return fmt.Errorf("a private Tor network needs at least 1 authority, 1 exit and 3 relays in all (3-hop circuits); got %d authorities, %d exits, %d relays",
			p.Authorities, p.Exits, p.Relays)
	}
	if p.Scheduler != "" && p.Scheduler != "vanilla" && p.Scheduler != "kist" {
		return fmt.Errorf("tor scheduler %q: want vanilla or kist (tor's default)", p.Scheduler)
	}
	if p.VotingInterval <= 4 || 1800%p.VotingInterval != 0 {
		return fmt.Errorf("voting interval %d s: want more than 4 s and a divisor of 1800 s (10, 12, 15, 20, 30, 60, ...)", p.VotingInterval)
	}
	return nil
}

var certFingerprint = regexp.MustCompile(`(?m)^fingerprint ([0-9A-Fa-f]{40})\s*$`)

// ParseCertFingerprint reads the v3 identity fingerprint from an
// authority_certificate written by tor-gencert.
func ParseCertFingerprint(cert string) (string, error) {
	m := certFingerprint.FindStringSubmatch(cert)
	if m == nil {
		return "", fmt.Errorf("no \"fingerprint\" line of 40 hex digits in the authority certificate")
	}
	return strings.ToUpper(m[1]), nil
}

// ParseFingerprintFile reads DataDirectory/fingerprint ("NICK HEX" or
// "NICK XXXX XXXX ...", as `tor --list-fingerprint` prints it) and
// returns the 40 hex digits.
func ParseFingerprintFile(r io.Reader) (string, error) {
	s := bufio.NewScanner(r)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) < 2 {
			continue
		}
		fp := strings.ToUpper(strings.Join(f[1:], ""))
		if len(fp) == 40 && strings.Trim(fp, "0123456789ABCDEF") == "" {
			return fp, nil
		}
	}
	if err := s.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("no \"NICKNAME FINGERPRINT\" line with 40 hex digits")
}

// ParseBootstrap reads the PROGRESS and SUMMARY of a
// status/bootstrap-phase answer, e.g. `NOTICE BOOTSTRAP PROGRESS=100
// TAG=done SUMMARY="Done"`.
func ParseBootstrap(s string) (progress int, summary string, err error) {
	i := strings.Index(s, "PROGRESS=")
	if i < 0 {
		return 0, "", fmt.Errorf("no PROGRESS= in %q", s)
	}
	if _, err := fmt.Sscanf(s[i:], "PROGRESS=%d", &progress); err != nil {
		return 0, "", fmt.Errorf("bad PROGRESS in %q: %w", s, err)
	}
	if j := strings.Index(s, `SUMMARY="`); j >= 0 {
		summary = s[j+len(`SUMMARY="`):]
		if k := strings.IndexByte(summary, '"'); k >= 0 {
			summary = summary[:k]
		}
	}
	return progress, summary, nil
}
