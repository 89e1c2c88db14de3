# the kernel stack of every task, idle tasks included (like bt --all-tasks / foreach bt)
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.sched import idle_task
from drgn.helpers.linux.cpumask import for_each_possible_cpu
tasks = [idle_task(prog, c) for c in for_each_possible_cpu(prog)] + list(for_each_task(prog))
for t in tasks:
    print(f"PID: {t.pid.value_():<6} TASK: {t.value_():x} CPU: {t.thread_info.cpu.value_()} COMMAND: \"{t.comm.string_().decode()}\"")
    try:
        print(prog.stack_trace(t))
    except Exception as e:
        print(f"  error: {e}")
