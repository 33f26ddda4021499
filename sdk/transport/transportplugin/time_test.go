package transportplugin

import (
	"net/netip"
	"testing"
	"time"
)

func TestTiming(t *testing.T) {
	s := time.Now()
	tr := launch(t)
	t.Log("launch", time.Since(s))
	s = time.Now()
	tr.Listen(netip.MustParseAddrPort("127.0.0.1:0"))
	t.Log("listen", time.Since(s))
	s = time.Now()
	tr.Close()
	t.Log("close", time.Since(s))
}
