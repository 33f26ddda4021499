package socks

import (
	"net/netip"

	"github.com/tarzan-net/tarzan/core/ratelog"
)

// refusals keeps the "destination not allowed" line to one a minute.
var refusals ratelog.Limiter

// logRefused says, at INFO, why a CONNECT or UDP destination was refused
// here (SOCKS reply 2, curl's "(97) ... (2)"), and what to change.
func (p *Proxy) logRefused(a netip.Addr) {
	class := "unspecified, multicast or link-local"
	if a.IsLoopback() {
		class = "loopback"
	}
	refusals.Refused(p.log, "socks-local", "SOCKS destination refused here: "+class+" addresses never go through a tunnel "+
		"(a test server on loopback: reach it through an exit started with `tarzan init -exit -test-server`, README \"Your first network\")")
}
