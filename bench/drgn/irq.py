# interrupts, /proc/interrupts-like (like irq)
from drgn.helpers.linux.irq import for_each_irq_desc, irq_desc_chip_name, irq_desc_action_names, irq_desc_kstat_cpu
from drgn.helpers.linux.cpumask import for_each_online_cpu
from drgn.helpers.linux.percpu import per_cpu
cpus = list(for_each_online_cpu(prog))
print("     " + "".join(f"{'CPU%d' % c:>11}" for c in cpus))
for irq, desc in for_each_irq_desc(prog):
    counts = [irq_desc_kstat_cpu(desc, c) for c in cpus]
    names = irq_desc_action_names(desc)
    if not names and not any(counts):
        continue
    chip = irq_desc_chip_name(desc)
    chip = chip.decode() if chip else "-"
    handler = prog.symbol(desc.handle_irq.value_()).name if desc.handle_irq else "-"
    print(f"{irq:4}:" + "".join(f"{n:11}" for n in counts) + f"  {chip} {desc.irq_data.hwirq.value_()} {handler} " + ", ".join(n.decode() for n in names))
for name, what in (("__nmi_count", "NMI"), ("apic_timer_irqs", "LOC"), ("irq_spurious_count", "SPU"), ("apic_perf_irqs", "PMI"), ("apic_irq_work_irqs", "IWI"), ("icr_read_retry_count", "RTR"), ("irq_resched_count", "RES"), ("irq_call_count", "CAL"), ("irq_tlb_count", "TLB"), ("irq_thermal_count", "TRM"), ("irq_threshold_count", "THR"), ("irq_deferred_error_count", "DFR")):
    try:
        print(f"{what}: " + "".join(f"{per_cpu(prog['irq_stat'], c).member_(name).value_():11}" for c in cpus))
    except LookupError:
        pass
print(f"ERR: {prog['irq_err_count'].counter.value_():11}")
