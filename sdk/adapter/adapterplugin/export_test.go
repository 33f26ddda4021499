package adapterplugin

import (
	"fmt"
	"os"
	"time"

	"github.com/tarzan-net/tarzan/sdk/adapter"
	"github.com/tarzan-net/tarzan/sdk/internal/datachan"
	"github.com/tarzan-net/tarzan/sdk/pluginkit"
)

// ChannelMode says how a launched adapter's packets cross: "shm",
// "socket", or "none" between children.
func ChannelMode(a adapter.Adapter) string {
	d := a.(*client).data.Get()
	switch {
	case d == nil:
		return "none"
	case d.shm != nil:
		return "shm"
	default:
		return "socket"
	}
}

// ServeSocketOnly is a plugin from before shared memory: it ignores the
// host's offer.
func ServeSocketOnly(f adapter.Factory) {
	data, err := datachan.OpenChild()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	pluginkit.Serve(Kind, versions(&grpcPlugin{factory: f, data: data}))
}

// ServeHostile takes the shared memory and then breaks every rule: slots
// with impossible lengths, then a producer index far past anything the
// host consumed. The host must not Open it (its pumps would be a second
// producer on the ring).
func ServeHostile(f adapter.Factory) {
	data, err := datachan.OpenChild()
	if err != nil {
		os.Exit(1)
	}
	shm, err := datachan.OpenChildShm(data)
	if err != nil || shm == nil {
		fmt.Fprintln(os.Stderr, "hostile: no shared memory:", err)
		os.Exit(1)
	}
	go func() {
		_ = shm.Send(func(p *datachan.Producer, free int) int {
			for i := range 5 {
				s := p.Slot(i)
				for j := range s {
					s[j] = 0xff // length 65535 in a 2 KiB slot
				}
			}
			return 5
		})
		for consumed := false; !consumed; time.Sleep(10 * time.Millisecond) {
			_ = shm.Send(func(_ *datachan.Producer, free int) int {
				consumed = free == datachan.DefaultSlots // the host took the garbage
				return 0
			})
		}
		shm.PokeHeadForTest(1 << 62)
		datachan.RingForTest(shm) // wake the host
		select {}
	}()
	pluginkit.Serve(Kind, versions(&grpcPlugin{factory: f, data: data, shm: shm}))
}
