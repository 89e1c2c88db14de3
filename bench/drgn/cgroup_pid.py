# a task's cgroup v2 path, /proc/PID/cgroup-like (like cgroup PID)
import sys
from drgn.helpers.linux.pid import find_task
from drgn.helpers.linux.cgroup import cgroup_path
t = find_task(prog, int(sys.argv[1]))
cs = t.cgroups
print(f"{t.pid.value_()} {t.comm.string_().decode()} css_set {cs.value_():x} cgroup {cs.dfl_cgrp.value_():x} 0::{cgroup_path(cs.dfl_cgrp).decode()}")
