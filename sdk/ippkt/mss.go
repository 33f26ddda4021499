package ippkt

// ClampMSS lowers the MSS option of a TCP SYN in pkt to mss if it is
// larger, fixing the checksum, and reports whether it changed anything.
// A tunnel's inner MTU (1280) is below most paths' 1500, so SYNs that
// advertise 1460 would make the far end send segments that do not fit.
func ClampMSS(pkt []byte, mss uint16) bool {
	in, err := Parse(pkt)
	if err != nil {
		return false
	}
	return ClampMSSParsed(pkt, in, mss)
}

// ClampMSSParsed is ClampMSS on a packet already parsed into in (Parse's
// result for pkt, whose addresses may since have been rewritten in place):
// the data path parses each packet once and passes what it found down.
func ClampMSSParsed(pkt []byte, in Info, mss uint16) bool {
	if in.Proto != ProtoTCP || !in.HasTransport() || in.Length > len(pkt) || in.PayloadOffset+20 > in.Length {
		return false
	}
	t := pkt[in.PayloadOffset:in.Length]
	if t[13]&0x02 == 0 { // not SYN
		return false
	}
	opts := t[20 : int(t[12]>>4)*4]
	for i := 0; i < len(opts); {
		switch kind := opts[i]; kind {
		case 0: // end of options
			return false
		case 1: // no-op
			i++
			continue
		}
		if i+1 >= len(opts) || opts[i+1] < 2 || i+int(opts[i+1]) > len(opts) {
			return false
		}
		if opts[i] == 2 && opts[i+1] == 4 {
			v := opts[i+2 : i+4]
			if get16(v) <= mss {
				return false
			}
			var nv [2]byte
			put16(nv[:], mss)
			// The option sits at an even or odd offset; the update
			// works on 16-bit words aligned to the TCP header.
			start := 20 + i + 2
			if start%2 == 0 {
				put16(t[16:], update(get16(t[16:]), v, nv[:]))
			} else {
				old := [4]byte{t[start-1], v[0], v[1], t[start+2]}
				neu := [4]byte{t[start-1], nv[0], nv[1], t[start+2]}
				put16(t[16:], update(get16(t[16:]), old[:], neu[:]))
			}
			copy(v, nv[:])
			return true
		}
		i += int(opts[i+1])
	}
	return false
}
