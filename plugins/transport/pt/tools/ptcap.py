#!/usr/bin/env python3
"""Summarise TCP payloads in a loopback pcap: the obfs4 legs (one end a
bridge address from a peers file) against the plaintext legs of the same
run (streams that open with the pt plugin's TZPT hello)."""
import struct, sys, collections, math

def packets(path):
    with open(path, 'rb') as f:
        gh = f.read(24)
        endian = '<' if gh[:4] == b'\xd4\xc3\xb2\xa1' else '>'
        while True:
            h = f.read(16)
            if len(h) < 16:
                return
            _, _, incl, orig = struct.unpack(endian + 'IIII', h)
            data = f.read(incl)
            if len(data) < 14 + 20 or data[12:14] != b'\x08\x00':
                continue
            ip = data[14:]
            ihl = (ip[0] & 15) * 4
            tot = struct.unpack('>H', ip[2:4])[0]
            if ip[9] != 6:
                continue
            src, dst = ip[12:16], ip[16:20]
            tcp = ip[ihl:]
            sp, dp = struct.unpack('>HH', tcp[:4])
            off = (tcp[12] >> 4) * 4
            plen = tot - ihl - off
            if plen <= 0:
                continue
            yield (bytes(src), sp, bytes(dst), dp), plen, bytes(tcp[off:])

def ap(b, p):
    return '%d.%d.%d.%d:%d' % (b[0], b[1], b[2], b[3], p)

bridges = set(l.split()[0] for l in open(sys.argv[2]) if l.strip())
obfs, plain = [], []
first = {}
plainflows = set()
for (s, sp, d, dp), plen, head in packets(sys.argv[1]):
    a, b = ap(s, sp), ap(d, dp)
    flow = (a, b)
    if flow not in first:
        first[flow] = head[:16]
        if head.startswith(b'TZPT\x01'):
            plainflows.add(flow)
    if a in bridges or b in bridges:
        obfs.append((flow, plen, head))
    elif flow in plainflows:
        plain.append((flow, plen, head))

def report(name, segs):
    if not segs:
        print(name, 'no segments'); return
    sizes = collections.Counter(p for _, p, _ in segs)
    tot = sum(p for _, p, _ in segs)
    n = len(segs)
    print('## %s: %d segments, %d payload bytes, %d flows' % (name, n, tot, len(set(f for f, _, _ in segs))))
    top = sizes.most_common(5)
    print('top sizes (bytes: share of segments):', ', '.join('%d: %.1f%%' % (s, 100 * c / n) for s, c in top))
    print('distinct sizes: %d; segments of 1400-1499 bytes: %.1f%%' % (len(sizes), 100 * sum(c for s, c in sizes.items() if 1400 <= s < 1500) / n))
    # a Tarzan frame record on the plain legs: u16 length 1408 = 05 80
    lp = sum(1 for _, _, h in segs if h[:2] == b'\x05\x80')
    print('segments opening with the 05 80 length prefix (1408): %.1f%%' % (100 * lp / n))
    # constant prologue: how many flows share their first 4 bytes
    fl = collections.Counter(first[f][:4] for f in set(f for f, _, _ in segs))
    print('most common first-4-bytes across flows: %s in %d of %d flows' % (fl.most_common(1)[0][0].hex(), fl.most_common(1)[0][1], sum(fl.values())))
    allb = b''.join(h[:48] for _, _, h in segs)
    c = collections.Counter(allb)
    H = -sum(v / len(allb) * math.log2(v / len(allb)) for v in c.values())
    print('byte entropy of the first 48 payload bytes of each segment: %.3f bits/byte over %d bytes' % (H, len(allb)))

report('obfs4 legs (on the wire)', obfs)
report('plaintext legs (inside each host, for contrast)', plain)
