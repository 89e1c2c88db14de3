package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"
)

// qmp is a client of QEMU's machine protocol on a unix socket.
type qmp struct {
	conn   net.Conn
	r      *bufio.Reader
	mu     sync.Mutex
	events []qmpEvent
}

type qmpEvent struct {
	Event string          `json:"event"`
	Data  json.RawMessage `json:"data"`
}

func dialQMP(path string, timeout time.Duration) (*qmp, error) {
	deadline := time.Now().Add(timeout)
	var conn net.Conn
	var err error
	for {
		conn, err = net.Dial("unix", path)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("qmp: connect %s: %w", path, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	q := &qmp{conn: conn, r: bufio.NewReaderSize(conn, 1<<20)}
	if _, err := q.r.ReadBytes('\n'); err != nil { // greeting
		return nil, fmt.Errorf("qmp: greeting: %w", err)
	}
	if _, err := q.do("qmp_capabilities", nil); err != nil {
		return nil, err
	}
	return q, nil
}

// do runs one command and returns its "return" value. Events that arrive
// meanwhile are kept for waitEvent.
func (q *qmp) do(cmd string, args any) (json.RawMessage, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	req := map[string]any{"execute": cmd}
	if args != nil {
		req["arguments"] = args
	}
	b, _ := json.Marshal(req)
	if _, err := q.conn.Write(append(b, '\n')); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", cmd, err)
	}
	for {
		line, err := q.r.ReadBytes('\n')
		if err != nil {
			return nil, fmt.Errorf("qmp %s: %w", cmd, err)
		}
		var resp struct {
			Return json.RawMessage `json:"return"`
			Error  *struct {
				Class string `json:"class"`
				Desc  string `json:"desc"`
			} `json:"error"`
			Event string `json:"event"`
		}
		if err := json.Unmarshal(line, &resp); err != nil {
			return nil, fmt.Errorf("qmp %s: bad reply %q: %w", cmd, line, err)
		}
		switch {
		case resp.Event != "":
			var ev qmpEvent
			json.Unmarshal(line, &ev)
			q.events = append(q.events, ev)
		case resp.Error != nil:
			return nil, fmt.Errorf("qmp %s: %s: %s", cmd, resp.Error.Class, resp.Error.Desc)
		default:
			return resp.Return, nil
		}
	}
}

// hmp runs a human monitor command, with cpu the current CPU if >= 0.
func (q *qmp) hmp(line string, cpu int) (string, error) {
	args := map[string]any{"command-line": line}
	if cpu >= 0 {
		args["cpu-index"] = cpu
	}
	ret, err := q.do("human-monitor-command", args)
	if err != nil {
		return "", err
	}
	var s string
	if err := json.Unmarshal(ret, &s); err != nil {
		return "", fmt.Errorf("hmp %q: %w", line, err)
	}
	return s, nil
}

// status returns the VM's run state, e.g. "running", "paused",
// "guest-panicked".
func (q *qmp) status() (string, error) {
	ret, err := q.do("query-status", nil)
	if err != nil {
		return "", err
	}
	var st struct {
		Status string `json:"status"`
	}
	err = json.Unmarshal(ret, &st)
	return st.Status, err
}

// registers returns the named registers of a CPU from "info registers".
func (q *qmp) registers(cpu int) (map[string]uint64, error) {
	s, err := q.hmp("info registers", cpu)
	if err != nil {
		return nil, err
	}
	regs := map[string]uint64{}
	for _, f := range strings.Fields(s) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			continue
		}
		var n uint64
		if _, err := fmt.Sscanf(v, "%x", &n); err == nil {
			regs[k] = n
		}
	}
	if _, ok := regs["RIP"]; !ok {
		return nil, fmt.Errorf("info registers of CPU %d: no RIP in %q", cpu, s)
	}
	return regs, nil
}

func (q *qmp) close() { q.conn.Close() }
