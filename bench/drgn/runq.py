# each CPU's runqueue: current, RT and CFS tasks (like runq)
from drgn.helpers.linux.cpumask import for_each_possible_cpu
from drgn.helpers.linux.sched import cpu_rq, cpu_curr, rq_for_each_fair_task, rq_for_each_rt_task
for cpu in for_each_possible_cpu(prog):
    rq = cpu_rq(prog, cpu)
    cur = cpu_curr(prog, cpu)
    print(f"CPU {cpu} RUNQUEUE: {rq.value_():x}")
    print(f"  CURRENT: PID: {cur.pid.value_():<6} TASK: {cur.value_():x}  COMMAND: \"{cur.comm.string_().decode()}\"")
    print("  RT PRIO_ARRAY:")
    for t in rq_for_each_rt_task(rq):
        print(f"     [{t.prio.value_():3}] PID: {t.pid.value_():<6} TASK: {t.value_():x}  COMMAND: \"{t.comm.string_().decode()}\"")
    print("  CFS RB_ROOT:")
    for t in rq_for_each_fair_task(rq):
        print(f"     [{t.prio.value_():3}] PID: {t.pid.value_():<6} TASK: {t.value_():x}  COMMAND: \"{t.comm.string_().decode()}\"")
