package experiment

// Usage is `tarzan experiment`'s help text.
const Usage = "experiment -c FILE.toml [-o DIR]\n\n" +
	"Runs every combination of the file's cover policies (and their swept\n" +
	"options), workloads and network sizes on the deterministic data-plane\n" +
	"simulator, attacks each run with a global passive adversary, and writes\n" +
	"DIR/results.json, DIR/report.md and DIR/*.png. The same file and seed\n" +
	"give the same results.json; seeds = N in the file runs every point N times\n" +
	"and reports the median and range. A run that fails is printed at once and\n" +
	"recorded in both files, the sweep goes on, and the command exits non-zero.\n" +
	"See docs/EXPERIMENTS.md and experiments/.\n\n" +
	"With --testbed the same sweep runs on real node processes in Linux network\n" +
	"namespaces, captured with tcpdump on every veth (root, ip and tcpdump needed;\n" +
	"output in experiment-NAME-testbed by default)."
