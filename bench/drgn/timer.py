# pending hrtimers and timer-wheel timers per CPU (like timer)
from drgn.helpers.linux.cpumask import for_each_online_cpu
from drgn.helpers.linux.percpu import per_cpu
from drgn.helpers.linux.timer import hrtimer_clock_base_for_each, timer_base_for_each
def sym(a):
    try:
        return prog.symbol(a).name
    except LookupError:
        return hex(a)
print("jiffies", prog["jiffies"].value_())
for cpu in for_each_online_cpu(prog):
    print(f"CPU: {cpu}")
    cb = per_cpu(prog["hrtimer_bases"], cpu)
    for i, base in enumerate(cb.clock_base):
        print(f"  clock {i} base {base.address_of_().value_():x}")
        for t in hrtimer_clock_base_for_each(base.address_of_()):
            print(f"    {t.value_():x} {t._softexpires.value_():20} {t.node.expires.value_():20} {sym(t.function.value_())}")
    tb = per_cpu(prog["timer_bases"], 0).address_of_()
    for w in range(len(prog["timer_bases"].type_.type if False else [0, 1])):
        base = per_cpu(prog["timer_bases"], cpu)[w].address_of_()
        print(f"  timer base {w} {base.value_():x}")
        for t in sorted(timer_base_for_each(base), key=lambda t: t.expires.value_()):
            print(f"    {t.value_():x} {t.expires.value_():12} {sym(t.function.value_())}")
