//go:build !purego

package onion

import (
	"runtime"

	"golang.org/x/sys/cpu"
)

// HardwareAES reports whether this CPU runs the onion cipher in constant
// time: crypto/aes uses the CPU's AES instructions (AES-NI with SSE4.1 and
// SSSE3 on amd64, the ARMv8 AES instructions on arm64), and GCM's carry-less
// multiply (PCLMULQDQ, PMULL) for the hash GCM computes on the side.
// Elsewhere Go falls back to table-based AES, whose timing depends on the
// key and data (a cache-timing side channel); nodes refuse to start there
// unless told otherwise (node.Options.AllowVariableTimeAES). GODEBUG
// settings such as cpu.aes=off are honoured, as crypto/aes honours them.
func HardwareAES() bool {
	switch runtime.GOARCH {
	case "amd64":
		return cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ && cpu.X86.HasSSE41 && cpu.X86.HasSSSE3
	case "arm64":
		return cpu.ARM64.HasAES && cpu.ARM64.HasPMULL
	}
	return false
}
