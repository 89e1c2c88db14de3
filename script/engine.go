package script

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/dop251/goja"
	"github.com/kinspect/kinspect"
	"github.com/kinspect/kinspect/bpfrun"
	"github.com/kinspect/kinspect/objects"
)

// Config is the kernel a script inspects and where its output goes.
type Config struct {
	// Kernel is the kernel to inspect (required), as kinspect.Open
	// opened it.
	Kernel *kinspect.Kernel
	// Stdout receives console.log and print (default os.Stdout).
	Stdout io.Writer
	// Stderr receives console.warn and console.error, as in Node
	// (default os.Stderr): a script's --json output on Stdout stays one
	// document when it reports per-object errors.
	Stderr io.Writer
	// Args are the script's arguments, kinspect.args.
	Args []string
	// Overwrite lets kinspect.writeFile replace an existing file.
	Overwrite bool
}

// Engine runs scripts over one kernel. It is not safe for concurrent use,
// except Interrupt, which may be called from any goroutine.
type Engine struct {
	cfg    Config
	k      *kinspect.Kernel
	rt     *goja.Runtime
	out    io.Writer
	prog   *objects.Program
	cache  *identity
	proto  *goja.Object // the prototype of every typed value
	kernel *goja.Object
	stack  *stacker
	// enums maps enumerator names to values (kernel.constant).
	enums map[string]enumConst
	// iterators not yet finished, stopped by Close.
	open map[*pullIter]struct{}
	// replay runs BPF programs (kernel.bpf.run, debug, state).
	replay *bpfrun.Replayer
}

// ErrInterrupted: the script was stopped (Ctrl-C or its time limit).
var ErrInterrupted = errors.New("script interrupted")

// ErrScript: the script threw an exception or has a syntax error.
var ErrScript = errors.New("script failed")

// New returns an Engine with the kernel, console, print and kinspect
// globals defined.
func New(cfg Config) (*Engine, error) {
	if cfg.Kernel == nil || cfg.Kernel.Program() == nil {
		return nil, fmt.Errorf("script: no kernel program: %w", objects.ErrNotFound)
	}
	if cfg.Stdout == nil {
		cfg.Stdout = os.Stdout
	}
	if cfg.Stderr == nil {
		cfg.Stderr = os.Stderr
	}
	e := &Engine{cfg: cfg, rt: goja.New(), out: cfg.Stdout, k: cfg.Kernel, prog: cfg.Kernel.Program(), cache: newIdentity(),
		open: map[*pullIter]struct{}{}}
	e.stack = &stacker{e: e}
	if err := e.setup(); err != nil {
		return nil, err
	}
	return e, nil
}

// Runtime returns the goja runtime (for the REPL's completion).
func (e *Engine) Runtime() *goja.Runtime { return e.rt }

// Interrupt stops the running script at its next instruction; Run then
// returns an error wrapping ErrInterrupted and why.
func (e *Engine) Interrupt(why string) { e.rt.Interrupt(why) }

// Close stops the walks the script left unfinished.
func (e *Engine) Close() {
	for it := range e.open {
		it.close()
	}
}

// Run runs src (named name in messages) to its end. It is stopped when
// ctx is done (a timeout or a signal). Errors wrap ErrScript (an
// uncaught exception, with the script's position) or ErrInterrupted.
func (e *Engine) Run(ctx context.Context, name, src string) (goja.Value, error) {
	prg, err := goja.Compile(name, src, false)
	if err != nil {
		return nil, &scriptErr{syntaxMessage(err).Error()}
	}
	return e.RunProgram(ctx, prg)
}

// RunProgram runs a compiled program (see Run).
func (e *Engine) RunProgram(ctx context.Context, prg *goja.Program) (goja.Value, error) {
	stop := make(chan struct{})
	watcher := make(chan struct{})
	go func() {
		defer close(watcher)
		select {
		case <-ctx.Done():
			why := "interrupted"
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				why = "time limit reached"
			}
			e.rt.Interrupt(why)
		case <-stop:
		}
	}()
	// The watcher is gone before the next run: its Interrupt cannot
	// leak into it.
	defer func() {
		close(stop)
		<-watcher
		e.rt.ClearInterrupt()
	}()
	v, err := e.rt.RunProgram(prg)
	if err != nil {
		return nil, e.scriptError(err)
	}
	return v, nil
}

type syntaxErr struct{ err error }

func (s syntaxErr) Error() string { return strings.TrimPrefix(s.err.Error(), "SyntaxError: ") }

func syntaxMessage(err error) error { return syntaxErr{err} }

// scriptError turns goja's errors into ours: an exception's message and
// where it was thrown.
func (e *Engine) scriptError(err error) error {
	var ie *goja.InterruptedError
	if errors.As(err, &ie) {
		return fmt.Errorf("%v (at %s): %w", ie.Value(), firstFrame(ie.String()), ErrInterrupted)
	}
	var ex *goja.Exception
	if errors.As(err, &ex) {
		msg := ex.Value().String()
		if o, ok := ex.Value().(*goja.Object); ok {
			if m := o.Get("message"); m != nil && !goja.IsUndefined(m) {
				msg = m.String()
				if n := o.Get("name"); n != nil && !goja.IsUndefined(n) && n.String() != "Error" && n.String() != "GoError" && n.String() != "KernelError" {
					msg = n.String() + ": " + msg
				}
			}
		}
		if at := firstFrame(ex.String()); at != "" {
			return &scriptErr{at + ": " + msg}
		}
		return &scriptErr{msg}
	}
	var ce *goja.CompilerSyntaxError
	if errors.As(err, &ce) {
		return &scriptErr{err.Error()}
	}
	return &scriptErr{err.Error()}
}

// firstFrame is the script position of an exception's first stack line
// outside Go: "at f (file.js:3:7(12))" and "at file.js:3:7(12)" give
// "file.js:3:7".
func firstFrame(s string) string {
	for _, line := range strings.Split(s, "\n") {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "at ") || strings.HasSuffix(line, "(native)") {
			continue
		}
		pos := strings.TrimPrefix(line, "at ")
		if i := strings.LastIndexByte(pos, '('); i > 0 && strings.HasSuffix(pos, ")") && !strings.Contains(pos[i:], ":") {
			pos = pos[:i] // the bytecode offset
		}
		if i := strings.Index(pos, " ("); i >= 0 {
			pos = strings.TrimSuffix(pos[i+2:], ")")
			if j := strings.LastIndexByte(pos, '('); j > 0 {
				pos = pos[:j]
			}
		}
		return pos
	}
	return ""
}

// scriptErr is an error of the script: its message, and Is(ErrScript).
type scriptErr struct{ msg string }

func (s *scriptErr) Error() string        { return s.msg }
func (s *scriptErr) Is(target error) bool { return target == ErrScript }

// RunFile runs the script at path.
func (e *Engine) RunFile(ctx context.Context, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("script: %w", err)
	}
	src := string(b)
	if strings.HasPrefix(src, "#!") {
		src = "//" + src
	}
	_, err = e.Run(ctx, path, src)
	return err
}

// Eval evaluates an expression or statements and returns the result
// rendered as the REPL prints it ("" for undefined).
func (e *Engine) Eval(ctx context.Context, src string) (string, error) {
	v, err := e.Run(ctx, "<eval>", src)
	if err != nil {
		return "", err
	}
	if v == nil || goja.IsUndefined(v) {
		return "", nil
	}
	return e.Format(v), nil
}

// WithTimeout returns ctx bounded by d (0: unbounded).
func WithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
