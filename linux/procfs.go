package linux

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/kinspect/kinspect/objects"
)

// What fs/proc/base.c reads of a process's memory: its command line
// (/proc/PID/cmdline) and environment (/proc/PID/environ), and the
// kernel's own command line (/proc/cmdline).

// KernelCmdline returns the kernel's command line as /proc/cmdline
// shows it (saved_command_line).
func KernelCmdline(p *objects.Program) (string, error) {
	v, err := p.Variable("saved_command_line")
	if err != nil {
		return "", err
	}
	return v.CString()
}

// maxArgs bounds what ProcArgs reads of an argument or environment
// area (the kernel's own limit on them is ARG_MAX, 128 KiB by default,
// up to a quarter of the stack limit).
const maxArgs = 8 << 20

// ProcArgs is what a process's memory says of its command line and
// environment.
type ProcArgs struct {
	Task objects.Hex `json:"task"`
	PID  int         `json:"pid"`
	TID  int         `json:"tid"`
	Comm string      `json:"comm"`
	// Args are the strings of /proc/PID/cmdline, Env those of
	// /proc/PID/environ (none for a kernel thread).
	Args []string `json:"args"`
	Env  []string `json:"env"`
	// ArgsErr and EnvErr say why an area could not be read: a page the
	// process never touched or that was swapped out, or one the dump
	// left out (makedumpfile excludes user pages from -d 8 up).
	ArgsErr string `json:"args_error,omitempty"`
	EnvErr  string `json:"env_error,omitempty"`
}

// ReadProcArgs reads a task's command line and environment from its
// address space, as /proc/PID/cmdline (get_mm_cmdline) and environ do:
// mm->arg_start..arg_end, except that a process that overwrote the
// end of its arguments (setproctitle) shows its title up to its first
// NUL, read on into the environment; and mm->env_start..env_end.
func ReadProcArgs(task objects.Value) (*ProcArgs, error) {
	t, err := NewTask(task)
	if err != nil {
		return nil, err
	}
	out := &ProcArgs{Task: objects.Hex(t.Addr), PID: t.PID, TID: t.TID, Comm: t.Comm, Args: []string{}, Env: []string{}}
	tv, _ := task.Program().ObjectOf("struct task_struct", t.Addr)
	mm, ok, err := TaskMM(tv)
	if err != nil || !ok {
		return out, err
	}
	_, s, err := task.Program().ReadStruct("struct mm_struct", mm.Addr())
	if err != nil {
		return nil, err
	}
	argStart, argEnd, envStart, envEnd := s.Uint("arg_start"), s.Uint("arg_end"), s.Uint("env_start"), s.Uint("env_end")
	if err := s.Err(); err != nil {
		return nil, err
	}
	read := func(start, end uint64) ([]byte, error) {
		if end < start || end-start > maxArgs {
			return nil, fmt.Errorf("area %#x-%#x: %w", start, end, objects.ErrCorrupt)
		}
		b := make([]byte, end-start)
		return b, ReadUser(mm, b, start)
	}
	if argEnd > argStart {
		b, err := read(argStart, argEnd)
		switch {
		case err != nil:
			out.ArgsErr = err.Error()
		case b[len(b)-1] != 0:
			// setproctitle: the title, up to its NUL, maybe in the
			// environment's area (which follows, when it does).
			end := argEnd
			if envStart == argEnd && envEnd >= envStart {
				end = envEnd
			}
			if all, err := read(argStart, end); err == nil {
				b = all
			}
			if i := bytes.IndexByte(b, 0); i >= 0 {
				b = b[:i]
			}
			out.Args = []string{string(b)}
		default:
			out.Args = splitNUL(b)
		}
	}
	if envEnd > envStart {
		b, err := read(envStart, envEnd)
		if err != nil {
			out.EnvErr = err.Error()
		} else {
			out.Env = splitNUL(b)
		}
	}
	if out.ArgsErr != "" && out.EnvErr != "" {
		return out, errors.New(out.ArgsErr)
	}
	return out, nil
}

// splitNUL splits NUL-terminated strings.
func splitNUL(b []byte) []string {
	b = bytes.TrimSuffix(b, []byte{0})
	var out []string
	for _, s := range bytes.Split(b, []byte{0}) {
		out = append(out, string(s))
	}
	return out
}
