package kcp

import (
	"testing"

	"github.com/tarzan-net/tarzan/sdk/transport"
	"github.com/tarzan-net/tarzan/sdk/transport/transporttest"
)

func TestConformance(t *testing.T) {
	transporttest.Run(t, func(t *testing.T) transport.Transport {
		tr, err := New(nil)
		if err != nil {
			t.Fatal(err)
		}
		return tr
	})
}
