// Package adversary models a global passive adversary against Tarzan and
// scores traffic-analysis attacks against ground truth. It is pure
// analysis over recorded observations: it does not import the node code,
// uses no global random state, and gives the same answer for the same
// input.
//
// # Threat model
//
// Tarzan (Freedman & Morris, CCS 2002) relays traffic through tunnels of
// peers chosen among each node's "mimics"; every link carries encrypted
// frames of one size (1408 bytes), and cover traffic on the mimic links is
// meant to hide who originates a flow. The adversary here sees, on every
// link, every frame's sender, receiver, size and the times it left and
// arrived — never its content. It also watches each exit's cleartext
// connection to the destination server (volume per time bin in each
// direction), which is what an observer near the server, or the server
// itself, sees. Its goal: for each cleartext flow, name the initiator. It
// does not corrupt nodes, drop, delay or inject traffic (it is passive),
// and it knows the node set and the cover policy (Kerckhoffs).
//
// # Recording
//
// A Builder bins observations, concurrently, into a Trace: per directed
// link, the departure bins and the arrival bins of its frames (one 32-bit
// word per non-empty bin), and per node the dense series of outbound
// frames by departure and inbound frames by arrival. Nodes are numbered
// 0..N-1; an Index maps addresses to numbers and wall-clock times to
// offsets. With the simulator:
//
//	x, _ := adversary.NewIndex(time.Now(), addrs) // addrs: every node, sorted
//	b := adversary.NewBuilder(x.Len(), 10*time.Millisecond)
//	net.SetRecorder(func(o simnet.Observation) {
//		b.Observe(x, o.Src, o.Dst, o.Sent, o.Arrived, o.Size)
//	})
//	... run the experiment ...
//	tr := b.Trace()
//
// Ground truth and the exit-side view of each flow are a Flow: the true
// Initiator (read only by Evaluate), the Exit, the connection's Start and
// End, and its cleartext volume per bin, Up (exit → server) and optionally
// Down (server → exit), filled with Flow.AddUp and AddDown. Since every
// Tarzan frame has the same size, the attacks count frames; an experiment
// that wants to let the adversary tell frame kinds apart by size can
// filter in the recorder.
//
// # Residuals: flow conservation
//
// A relay sends what it receives, shortly after, on another link; an
// endpoint does not. Residuals matches at every node each outbound frame
// to an earlier unused inbound frame from a different neighbour within a
// horizon (default 20 ms), oldest first. Unmatched outbound frames are the
// node's source residual, unused inbound frames its sink residual. This is
// the packet-counting idea of Back, Möller & Stiglic ("Traffic Analysis
// Attacks and Trade-Offs in Anonymity Providing Systems", IH 2001) applied
// with timing. Cover traffic that mimics absorb, or forwarded traffic that
// a node's cover replaces, makes every node look alike to it.
//
// # Attack 1: originator detection (DetectOriginators)
//
// For each flow, over its active window (widened by the largest tunnel
// delay, MaxLag), each node gets a score: with Method Timing its source
// plus sink residual frames; with Method Imbalance the sum over windows of
// |frames out − frames in|. The median candidate's score is subtracted
// (what every node does, such as cover, is not evidence) and the excesses
// become probabilities in proportion, p ∝ excess + prior, the prior being
// the larger of Options.Prior (1 frame) and the crowd's noise, 1.4826 × the
// median absolute deviation of the scores. Read it as: "blame the sender
// of a randomly chosen unexplained frame". It uses no cleartext, only the
// flow's timing, so with several concurrent flows it narrows the field to
// the active endpoints (initiators and exits) rather than naming one.
//
// # Attack 2: flow correlation (CorrelateFlows)
//
// The exit's cleartext series is correlated with every candidate's frame
// series: Up with the candidate's outbound signal shifted earlier (the
// candidate sends, the exit forwards after the tunnel delay), Down with
// its inbound signal shifted later. The signal is by default the residual
// (so the flow's relays, whose forwarded frames are explained, do not
// correlate; RawSignal uses all frames, and the relays then compete with
// the initiator). Bins are summed over windows (default 100 ms), the
// Pearson correlation r is computed for each lag 0..MaxLag (default
// 500 ms, step one bin) and the best lag kept: windowed timing correlation
// as in Levine, Reiter, Wang & Wright ("Timing Attacks in Low-Latency Mix
// Systems", FC 2004).
//
// The correlations become a distribution as follows. Fisher's transform
// z = atanh(r)·√(K−3) over K windows is roughly standard normal for an
// unrelated candidate; Up and Down combine as (z_up+z_down)/√2 (Stouffer).
// Real traffic is autocorrelated, which widens the null spread, so all z
// are divided by max(1, 1.4826 × MAD of the candidates' z) and then
// p ∝ exp(β·z) (softmax, β = Options.Beta, default 1: one standard
// deviation above another candidate multiplies the odds by e). When the z
// are pure Gaussian noise this costs about β²/(2 ln 2) ≈ 0.72·β² bits of
// entropy compared with uniform (less when many candidates show no
// activity at all, whose z are exactly 0), so with no information the
// degree of anonymity reads somewhat below 1 (0.86–1 for N = 32 and
// β = 1; 0.94 in this package's constant-cover test). A smaller β makes a
// more cautious adversary. Ranks and top-k accuracy do not depend on β.
//
// Both attacks exclude the flow's exit (probability 0: the adversary sees
// it emit the cleartext and an exit does not initiate its own tunnel)
// unless Options.IncludeExit.
//
// # Metrics
//
// Each attack yields one Distribution per flow. Evaluate averages over
// flows:
//
//   - Top1, Top10: how often the true initiator is ranked first, or among
//     the first ten. Ties are broken at random in expectation, so a
//     uniform distribution scores exactly k/N: chance.
//   - MeanRank, MedianRank: the true initiator's (expected) rank, 1 best;
//     (N+1)/2 is chance.
//   - TrueProb: the probability the adversary gives the true initiator.
//   - Entropy H = −Σ p log2 p, in bits: the adversary's uncertainty.
//   - EffectiveSize 2^H: the size of a uniform anonymity set with the same
//     entropy (Serjantov & Danezis, "Towards an Information Theoretic
//     Metric for Anonymity", PET 2002).
//   - Degree d = H / log2 N: 1 when all N nodes are equally suspect, 0
//     when one is certain (Díaz, Seys, Claessens & Preneel, "Towards
//     Measuring Anonymity", PET 2002). N counts all nodes, so with the exit
//     excluded the best possible is log2(N−1)/log2 N.
//
// The entropy metrics measure the adversary's stated belief, so they are
// only as meaningful as its calibration (the conversions above); accuracy
// and rank measure what it gets right and do not depend on it. Report
// both.
//
// Cost of the defence: Overhead (all frames ÷ frames carrying data),
// Latencies / Percentile (p50, p90, p99 by linear interpolation between
// closest ranks, Hyndman & Fan's type 7) and Goodput (useful bytes per
// second).
//
// # Limitations
//
//   - Bins quantise time: two frames in one bin have no order, and a relay
//     is matched at bin resolution. Pick bins shorter than the link
//     latency (10 ms bins for tens of milliseconds of latency).
//   - The adversary is generic, not optimal: no learning (as in DeepCorr),
//     no per-node baselines, no use of the mimic topology beyond
//     "a frame is not forwarded back where it came from", and tunnel delay
//     is searched as one lag, not per hop.
//   - The probability conversions are heuristics (documented above);
//     compare policies with the same Options.
//   - A frame that arrives but is discarded by the receiving host still
//     counts as arrived (the wire saw it).
package adversary
