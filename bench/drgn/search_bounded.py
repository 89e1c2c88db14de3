# search [START, START+LEN) for an 8-byte VALUE at aligned addresses (like search -s START -l LEN VALUE)
import sys, struct as st
from drgn import FaultError
start, length, value = int(sys.argv[1], 16), int(sys.argv[2]), int(sys.argv[3], 16)
needle = st.pack("<Q", value)
hits = unread = 0
for page in range(start & ~0xfff, start + length, 4096):
    try:
        b = prog.read(page, 4096)
    except FaultError:
        unread += 1
        continue
    i = b.find(needle)
    while i >= 0:
        if i % 8 == 0 and start <= page + i < start + length:
            print(f"{page + i:x}: {value:x}")
            hits += 1
        i = b.find(needle, i + 1)
print(f"{hits} hits, {unread} unreadable pages")
