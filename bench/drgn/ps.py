# every task: PID, PPID, CPU, TASK, ST, COMM; '>' for a CPU's current task (like ps)
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.sched import idle_task, cpu_curr, task_state_to_char
from drgn.helpers.linux.cpumask import for_each_possible_cpu
cpus = list(for_each_possible_cpu(prog))
cur = {cpu_curr(prog, c).value_() for c in cpus}
rows = [idle_task(prog, c) for c in cpus] + sorted(for_each_task(prog), key=lambda t: t.pid.value_())
print("       PID    PPID  CPU             TASK  ST  COMM")
for t in rows:
    mark = ">" if t.value_() in cur else " "
    print(f"{mark} {t.pid.value_():9} {t.real_parent.pid.value_():7} {t.thread_info.cpu.value_():4} {t.value_():16x}  {task_state_to_char(t)}   {t.comm.string_().decode()}")
