package linux

import (
	"fmt"
	"strings"

	"github.com/kinspect/kinspect/objects"
)

// A task's signals (include/linux/sched/signal.h, signal_types.h,
// fs/proc/array.c): what is pending, blocked, ignored and caught, and
// each signal's handler, as crash's sig and /proc/PID/status show them.

// SigNames are the names of x86-64's signals 1-31; 32-64 are real-time
// (SIGRTMIN is 32 in the kernel).
var SigNames = [...]string{"", "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGKILL",
	"SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT", "SIGCHLD", "SIGCONT", "SIGSTOP",
	"SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO",
	"SIGPWR", "SIGSYS"}

// SigName names signal n: SIGHUP..SIGSYS, then SIGRTMIN+k.
func SigName(n int) string {
	if n > 0 && n < len(SigNames) {
		return SigNames[n]
	}
	if n >= 32 && n <= 64 {
		return fmt.Sprintf("SIGRTMIN+%d", n-32)
	}
	return fmt.Sprintf("SIG%d", n)
}

// SigSet is a sigset_t of 64 signals: signal n is bit n-1. It prints
// as /proc/PID/status prints one, 16 hex digits.
type SigSet uint64

// MarshalText renders the set as 16 hex digits.
func (s SigSet) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s SigSet) String() string { return fmt.Sprintf("%016x", uint64(s)) }

// Names lists the signals in the set.
func (s SigSet) Names() []string {
	var out []string
	for n := 1; n <= 64; n++ {
		if s&(1<<(n-1)) != 0 {
			out = append(out, SigName(n))
		}
	}
	return out
}

// SigAction is a signal's disposition (struct k_sigaction).
type SigAction struct {
	Signal int    `json:"signal"`
	Name   string `json:"name"`
	// Handler is sa_handler: 0 SIG_DFL, 1 SIG_IGN, else the user
	// address of the handler.
	Handler objects.Hex `json:"handler"`
	Flags   objects.Hex `json:"flags"` // sa_flags (SA_*)
	Mask    SigSet      `json:"mask"`  // sa_mask
}

// Disposition says SIG_DFL, SIG_IGN, or the handler's address.
func (a SigAction) Disposition() string {
	switch a.Handler {
	case 0:
		return "SIG_DFL"
	case 1:
		return "SIG_IGN"
	}
	return fmt.Sprintf("%x", uint64(a.Handler))
}

// QueuedSignal is a signal on a pending queue (struct sigqueue).
type QueuedSignal struct {
	Signal int  `json:"signal"`
	Code   int  `json:"code"` // si_code
	PID    int  `json:"pid"`  // si_pid of the sender
	Shared bool `json:"shared"`
}

// TaskSignals is what crash's sig shows of a task.
type TaskSignals struct {
	Task objects.Hex `json:"task"`
	PID  int         `json:"pid"` // the thread group
	TID  int         `json:"tid"`
	Comm string      `json:"comm"`
	// SignalStruct and Sighand are task->signal and task->sighand.
	SignalStruct objects.Hex `json:"signal_struct"`
	Sighand      objects.Hex `json:"sighand"`
	NrThreads    int         `json:"nr_threads"`
	// Pending (task->pending), SharedPending (signal->shared_pending),
	// Blocked (task->blocked), Ignored and Caught (from the actions, as
	// collect_sigign_sigcatch): /proc/PID/status's SigPnd, ShdPnd,
	// SigBlk, SigIgn, SigCgt.
	Pending       SigSet         `json:"pending"`
	SharedPending SigSet         `json:"shared_pending"`
	Blocked       SigSet         `json:"blocked"`
	Ignored       SigSet         `json:"ignored"`
	Caught        SigSet         `json:"caught"`
	Actions       []SigAction    `json:"actions"`
	Queued        []QueuedSignal `json:"queued"`
}

// maxQueued bounds a pending queue (RLIMIT_SIGPENDING is far lower in
// practice).
const maxQueued = 1 << 16

// ReadTaskSignals reads a task's signals. Errors name the task.
func ReadTaskSignals(task objects.Value) (*TaskSignals, error) {
	p := task.Program()
	ta, err := objects.ObjectAddr(task, "task signals")
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*TaskSignals, error) { return nil, fmt.Errorf("signals of task %#x: %w", ta, err) }
	t, err := NewTask(task)
	if err != nil {
		return nil, err
	}
	out := &TaskSignals{Task: objects.Hex(ta), PID: t.PID, TID: t.TID, Comm: t.Comm, Actions: []SigAction{}, Queued: []QueuedSignal{}}
	tv, _ := p.ObjectOf("struct task_struct", ta)
	set := func(path string) (SigSet, error) {
		v, err := tv.MemberUint(path + ".sig[0]")
		return SigSet(v), err
	}
	if out.Pending, err = set("pending.signal"); err != nil {
		return fail(err)
	}
	if out.Blocked, err = set("blocked"); err != nil {
		return fail(err)
	}
	sig, err := tv.MemberUint("signal")
	if err != nil {
		return fail(err)
	}
	out.SignalStruct = objects.Hex(sig)
	if sig != 0 {
		if out.SharedPending, err = set("signal->shared_pending.signal"); err != nil {
			return fail(err)
		}
		n, err := tv.MemberInt("signal->nr_threads")
		if err != nil {
			return fail(err)
		}
		out.NrThreads = int(n)
	}
	sh, err := tv.MemberUint("sighand")
	if err != nil {
		return fail(err)
	}
	out.Sighand = objects.Hex(sh)
	if sh != 0 {
		acts, err := tv.Path("sighand->action")
		if err != nil {
			return fail(err)
		}
		n, err := acts.Len()
		if err != nil {
			return fail(err)
		}
		b, err := acts.Bytes()
		if err != nil {
			return fail(err)
		}
		at, _ := acts.Index(0)
		size, _ := at.Size()
		ho, _, err1 := p.MemberOffset("struct k_sigaction", "sa.sa_handler")
		fo, _, err2 := p.MemberOffset("struct k_sigaction", "sa.sa_flags")
		mo, _, err3 := p.MemberOffset("struct k_sigaction", "sa.sa_mask")
		if err1 != nil || err2 != nil || err3 != nil {
			return fail(fmt.Errorf("struct k_sigaction: %v %v %v", err1, err2, err3))
		}
		u64 := func(off int) uint64 {
			var x uint64
			for i := 7; i >= 0; i-- {
				x = x<<8 | uint64(b[off+i])
			}
			return x
		}
		for i := range n {
			base := i * size
			a := SigAction{Signal: i + 1, Name: SigName(i + 1), Handler: objects.Hex(u64(base + int(ho))), Flags: objects.Hex(u64(base + int(fo))), Mask: SigSet(u64(base + int(mo)))}
			switch a.Handler {
			case 0:
			case 1:
				out.Ignored |= 1 << i
			default:
				out.Caught |= 1 << i
			}
			out.Actions = append(out.Actions, a)
		}
	}
	queues := []struct {
		path   string
		shared bool
	}{{"pending.list", false}}
	if sig != 0 {
		queues = append(queues, struct {
			path   string
			shared bool
		}{"signal->shared_pending.list", true})
	}
	for _, q := range queues {
		head, err := tv.Path(q.path)
		if err != nil {
			return fail(err)
		}
		n := 0
		for sq, err := range objects.ListForEachEntry(head, "struct sigqueue", "list") {
			if err != nil {
				return fail(err)
			}
			if n++; n > maxQueued {
				return fail(fmt.Errorf("%s: more than %d queued: %w", q.path, maxQueued, objects.ErrCorrupt))
			}
			signo, err1 := sq.MemberInt("info.si_signo")
			code, err2 := sq.MemberInt("info.si_code")
			if err1 != nil || err2 != nil {
				return fail(fmt.Errorf("sigqueue %#x: %v %v", sq.Addr(), err1, err2))
			}
			qs := QueuedSignal{Signal: int(signo), Code: int(code), Shared: q.shared}
			// si_pid, in the _kill (or _rt) union member.
			if pid, err := sq.MemberInt("info._sifields._kill._pid"); err == nil {
				qs.PID = int(pid)
			}
			out.Queued = append(out.Queued, qs)
		}
	}
	return out, nil
}

// SigSetNames joins a set's signal names.
func SigSetNames(s SigSet) string { return strings.Join(s.Names(), " ") }
