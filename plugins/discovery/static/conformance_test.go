package static

import (
	"testing"

	"github.com/tarzan-net/tarzan/sdk/discovery"
	"github.com/tarzan-net/tarzan/sdk/discovery/discoverytest"
)

func TestConformance(t *testing.T) {
	discoverytest.Run(t, func(t *testing.T) discovery.Discovery {
		d, err := New(map[string]string{"peers": "127.0.0.1:7001,[::1]:7002", "interval": "100ms"})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}, discoverytest.Options{})
}
