#!/bin/bash
# The main job on a real dump: builds the lab's "basic" scenario (a Debian
# 6.1 kernel with BPF programs and maps, dumped by QEMU and makedumpfile)
# and runs kinspect on its zlib kdump: the machine, its tasks, its BPF
# programs and maps, and the backtraces of its CPUs, one of which is
# inside a JIT-compiled BPF program.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
command -v go >/dev/null || { echo "demo.sh: Go 1.26 or newer is needed (/usr/local/go)"; exit 1; }

go run ./lab basic
go build -o bin/kinspect ./cmd/kinspect
dump=$(go run ./lab path basic kdump-zlib)
set -x
bin/kinspect -c "$dump" info
bin/kinspect -c "$dump" ps | head -20
bin/kinspect -c "$dump" prog show
bin/kinspect -c "$dump" map show
bin/kinspect -c "$dump" map dump name ki_hash | head -30
bin/kinspect -c "$dump" bt -a
