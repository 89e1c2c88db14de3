# a struct in memory, every member (like struct TYPE ADDR)
import sys
from drgn import Object
print(Object(prog, ' '.join(sys.argv[1:-1]), address=int(sys.argv[-1], 16)).format_())
