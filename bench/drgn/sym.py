# symbol lookup by name (like sym NAME)
import sys
for s in prog.symbols(sys.argv[1]):
    print(f"{s.address:x} ({s.binding.name[0]}) {s.name} size {s.size}")
