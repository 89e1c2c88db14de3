# read N 8-byte units at ADDR in hex and ASCII (like rd ADDR N)
import sys, struct as st
addr, n = int(sys.argv[1], 16), int(sys.argv[2])
b = prog.read(addr, n * 8)
for off in range(0, len(b), 16):
    chunk = b[off:off + 16]
    vals = st.unpack("<%dQ" % (len(chunk) // 8), chunk)
    print(f"{addr + off:x}:  " + "  ".join(f"{v:016x}" for v in vals) + "   " + "".join(chr(c) if 32 <= c < 127 else "." for c in chunk))
