# a task's task_struct, every member (like task PID)
import sys
from drgn.helpers.linux.pid import find_task
t = find_task(prog, int(sys.argv[1]))
print(f"PID: {t.pid.value_()} TASK: {t.value_():x} CPU: {t.thread_info.cpu.value_()} COMMAND: \"{t.comm.string_().decode()}\"")
print(t[0].format_())
