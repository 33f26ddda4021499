//go:build purego

package onion

// HardwareAES is false with the purego build tag: crypto/aes then uses its
// table-based code everywhere (see hwaes.go).
func HardwareAES() bool { return false }
