# a task's signals: handlers, pending, blocked, ignored, caught (like sig PID)
import sys
from drgn.helpers.linux.pid import find_task
from drgn.helpers.linux.signal import signal_names, sigset_to_hex, sigpending_for_each, decode_sigaction_flags
t = find_task(prog, int(sys.argv[1]))
sig = t.signal
sh = t.sighand
names = signal_names(prog)
print(f"PID: {t.pid.value_()} TASK: {t.value_():x} COMMAND: \"{t.comm.string_().decode()}\"")
print(f"SIGNAL_STRUCT: {sig.value_():x} NR_THREADS: {sig.nr_threads.value_()} SIGHAND: {sh.value_():x}")
ign = cgt = 0
for i in range(64):
    ka = sh.action[i]
    h = ka.sa.sa_handler.value_()
    n = i + 1
    if h == 1:
        ign |= 1 << i
    elif h > 1:
        cgt |= 1 << i
    hs = {0: "SIG_DFL", 1: "SIG_IGN"}.get(h, f"{h:x}")
    print(f"  [{n:2}] {names.get(n, str(n)) if isinstance(names, dict) else n:10} {hs:16} flags {decode_sigaction_flags(ka.sa)} mask {sigset_to_hex(ka.sa.sa_mask)}")
print("SigPnd:", sigset_to_hex(t.pending.signal), "ShdPnd:", sigset_to_hex(sig.shared_pending.signal))
print("SigBlk:", sigset_to_hex(t.blocked), f"SigIgn: {ign:016x} SigCgt: {cgt:016x}")
for q in sigpending_for_each(t.pending):
    print("  queued", q.info.si_signo.value_(), q.info.si_code.value_())
for q in sigpending_for_each(sig.shared_pending):
    print("  queued (shared)", q.info.si_signo.value_(), q.info.si_code.value_())
