# Run one of drgn's crash-compatible commands: crash.py kmem -s
import sys
import drgn.commands.linux  # noqa: F401 (registers the commands)
import drgn.commands._crash  # noqa: F401
from drgn.commands import run_command
run_command(prog, "crash " + " ".join(sys.argv[1:]))
