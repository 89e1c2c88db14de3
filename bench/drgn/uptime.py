# uptime and load average (like uptime)
from drgn.helpers.linux.timekeeping import uptime_pretty
from drgn.helpers.linux.sched import loadavg
print(f"up {uptime_pretty(prog)}, load average: " + ", ".join(f"{x:.2f}" for x in loadavg(prog)) + f", {prog['nr_threads'].value_()} threads")
