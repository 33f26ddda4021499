package coverplugin

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tarzan-net/tarzan/sdk/cover"
	"github.com/tarzan-net/tarzan/sdk/cover/coverplugin/internal/coverpb"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

// tickTimeout bounds one Tick; a policy slower than this is broken.
const tickTimeout = 5 * time.Second

// client is the host side: a cover.Policy backed by a supervised child.
type client struct {
	sup      *pluginkit.Supervisor
	options  map[string]string
	mu       sync.Mutex
	name     string
	interval time.Duration
	loopRate float64
	once     sync.Once
}

var _ cover.Looper = (*client)(nil)

// Launch starts the cover policy plugin l describes and creates its policy
// from options. While the child restarts, Tick returns an error wrapping
// pluginkit.ErrUnavailable; the engine should keep the previous schedule.
// The result also implements pluginkit.Reporter, and cover.Looper with the
// loop rate the plugin's policy asked for at Configure (0 when it does not
// implement cover.Looper).
func Launch(l pluginkit.Launcher, options map[string]string) (cover.Policy, error) {
	c := &client{options: options}
	sup, err := pluginkit.Start(l, Kind, versions(&grpcPlugin{}), pluginkit.Hooks{Attach: c.attach})
	if err != nil {
		return nil, err
	}
	c.sup = sup
	return c, nil
}

// attach configures every new child; the policy has no other state to
// replay (it sees fresh statistics on the next tick).
func (c *client) attach(raw any, _ bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), tickTimeout)
	defer cancel()
	resp, err := raw.(coverpb.CoverClient).Configure(ctx, &coverpb.ConfigureRequest{Options: c.options})
	if err != nil {
		return fmt.Errorf("configure: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.name, c.interval = resp.GetName(), time.Duration(resp.GetIntervalNs())
	c.loopRate = resp.GetLoopRate()
	return nil
}

func (c *client) Name() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.name
}

func (c *client) Interval() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.interval
}

// Loops is the loop schedule the policy answered at the last Configure.
func (c *client) Loops() cover.Loops {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cover.Loops{Rate: c.loopRate}
}

func (c *client) Tick(now time.Time, links []cover.LinkStats) ([]cover.Target, error) {
	raw, err := c.sup.Client()
	if err != nil {
		return nil, fmt.Errorf("coverplugin: tick: %w", err)
	}
	req := &coverpb.TickRequest{NowUnixNano: now.UnixNano(), Links: toPB(links)}
	ctx, cancel := context.WithTimeout(context.Background(), tickTimeout)
	defer cancel()
	resp, err := raw.(coverpb.CoverClient).Tick(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("coverplugin: tick: %w", err)
	}
	return fromPB(resp.GetRates(), resp.GetPoisson(), len(links))
}

func toPB(links []cover.LinkStats) []*coverpb.LinkStats {
	out := make([]*coverpb.LinkStats, len(links))
	for i, l := range links {
		out[i] = &coverpb.LinkStats{Peer: l.Peer, Queued: int64(l.Queued), DataSent: l.DataSent,
			CoverSent: l.CoverSent, DataRecv: l.DataRecv, CoverRecv: l.CoverRecv}
	}
	return out
}

// fromPB checks a plugin's answer for n links and makes the targets.
func fromPB(rates []float64, poisson []bool, n int) ([]cover.Target, error) {
	if len(rates) != n {
		return nil, fmt.Errorf("coverplugin: plugin returned %d targets for %d links", len(rates), n)
	}
	if len(poisson) != 0 && len(poisson) != n {
		return nil, fmt.Errorf("coverplugin: plugin returned %d Poisson flags for %d links", len(poisson), n)
	}
	out := make([]cover.Target, n)
	for i, r := range rates {
		out[i].Rate = r
		if len(poisson) != 0 {
			out[i].Poisson = poisson[i]
		}
	}
	return out, nil
}

func (c *client) Close() error {
	c.once.Do(func() {
		if raw, err := c.sup.Client(); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, _ = raw.(coverpb.CoverClient).Close(ctx, &coverpb.Empty{})
			cancel()
		}
		c.sup.Close()
	})
	return nil
}

func (c *client) Restarts() uint64             { return c.sup.Restarts() }
func (c *client) PluginStats() pluginkit.Stats { return c.sup.Stats() }

var _ pluginkit.Reporter = (*client)(nil)
