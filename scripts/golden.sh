#!/bin/bash
# Runs every kinspect command over every dump of the built lab scenarios
# and saves what each printed (stdout, stderr, exit status), so that two
# builds of kinspect can be compared byte for byte:
#
#   scripts/golden.sh OUTDIR [REV]      REV (default: the work tree) is built
#   diff -r OUT-BEFORE OUT-AFTER
#
# SCENARIOS picks scenarios (default: every built dump scenario);
# FORMATS picks dump formats for the per-object commands (default: elf
# and kdump-zlib-d31; the whole-kernel commands run on every format).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
out=${1:?usage: scripts/golden.sh OUTDIR [REV]}
rev=${2:-}
mkdir -p "$out"
out=$(cd "$out" && pwd)

bin=$out/kinspect
if [ -n "$rev" ]; then
	wt=$(mktemp -d)
	git worktree add -q --detach "$wt" "$rev"
	(cd "$wt" && go build -o "$bin" ./cmd/kinspect)
	rm -rf "$out/.samples" && cp -r "$wt/samples" "$out/.samples"
	git worktree remove --force "$wt"
else
	go build -o "$bin" ./cmd/kinspect
	rm -rf "$out/.samples" && cp -r samples "$out/.samples"
fi
# Samples run from one fixed path, so that their error messages (which
# name the script) compare equal between two runs.
samples=${TMPDIR:-/tmp}/kinspect-golden-samples
rm -rf "$samples" && mv "$out/.samples" "$samples"

SCENARIOS=${SCENARIOS:-"basic la57 k612 panic scale"}
FORMATS=${FORMATS:-"elf kdump-zlib-d31"}

# run NAME ARGS...: one command, its outputs under $dir/NAME.
run() {
	local name=$1
	shift
	local rc=0
	timeout 300 "$bin" "$@" >"$dir/$name.out" 2>"$dir/$name.err" || rc=$?
	echo "$rc" >"$dir/$name.rc"
}

for s in $SCENARIOS; do
	sdir=$(go run ./lab path "$s" 2>/dev/null) || { echo "golden: $s not built, skipped"; continue; }
	for dump in "$sdir"/dumps/*; do
		f=$(basename "$dump")
		dir=$out/$s/$f
		mkdir -p "$dir"
		c=(-c "$dump")
		run info "${c[@]}" info
		run info.json "${c[@]}" --json info
		run ps "${c[@]}" ps
		run ps.json "${c[@]}" --json ps
		run bt "${c[@]}" bt
		run bt-a "${c[@]}" bt -a
		run bt-a-f "${c[@]}" bt -a -f
		run bt-a.json "${c[@]}" --json bt -a
		run bt-all "${c[@]}" bt --all-tasks
		run dmesg "${c[@]}" dmesg
		run dmesg.json "${c[@]}" --json dmesg
		run prog "${c[@]}" prog show
		run prog.json "${c[@]}" --json prog show
		run prog-f "${c[@]}" prog show -f --pids
		run prog-f.json "${c[@]}" --json prog show -f --pids
		run prog-tag "${c[@]}" prog tag
		run prog-tag.json "${c[@]}" --json prog tag
		run map "${c[@]}" map show
		run map.json "${c[@]}" --pretty map show
		run map-f "${c[@]}" map show -f --pids
		run link "${c[@]}" link show
		run link.json "${c[@]}" --json link show
		run link-d "${c[@]}" link show --details
		run link-d.json "${c[@]}" --json link show --details -f --pids
		run btf-show "${c[@]}" btf show
		run btf-show.json "${c[@]}" --json btf show
		run so "${c[@]}" struct_ops show
		run so-dump "${c[@]}" struct_ops dump
		run so-dump.json "${c[@]}" --json struct_ops dump
		run feature "${c[@]}" feature
		run feature.json "${c[@]}" --json feature
		run sym "${c[@]}" sym init_task bpf_prog_put 0xffffffff81000000 schedule+0x10
		run sym.json "${c[@]}" --json sym init_task jiffies
		run print "${c[@]}" print init_task.comm 'per_cpu(runqueues, 1).nr_running' '&init_task' prog_idr
		run print.json "${c[@]}" --json print init_task.pid
		run btf-c "${c[@]}" btf dump 'struct bpf_prog'
		run btf-layout "${c[@]}" btf dump 'struct bpf_prog' --layout
		run btf-layout.json "${c[@]}" --json btf dump 'struct task_struct' --layout
		run eval "${c[@]}" -e 'kernel.sym("init_task")'
		for js in "$samples"/*.js; do
			run "sample-$(basename "$js" .js)" "${c[@]}" script "$js"
		done
		case " $FORMATS " in *" $f "*) ;; *) continue ;; esac
		# Per-object commands: every program, map and BTF object (at most
		# 40 programs: the scale scenario has 515).
		progs=$("$bin" "${c[@]}" --json prog show 2>/dev/null | grep -o '"id":[0-9]*' | cut -d: -f2 | head -40 || true)
		for id in $progs; do
			run "xlated-$id" "${c[@]}" prog dump xlated id "$id"
			run "xlated-$id-op" "${c[@]}" prog dump xlated id "$id" opcodes
			run "xlated-$id-linum" "${c[@]}" prog dump xlated id "$id" linum
			run "xlated-$id-visual" "${c[@]}" prog dump xlated id "$id" visual
			run "xlated-$id.json" "${c[@]}" --json prog dump xlated id "$id"
			run "jited-$id" "${c[@]}" prog dump jited id "$id"
			run "jited-$id-op" "${c[@]}" prog dump jited id "$id" opcodes linum
			run "jited-$id.json" "${c[@]}" --json prog dump jited id "$id"
		done
		maps=$("$bin" "${c[@]}" --json map show 2>/dev/null | grep -o '"id":[0-9]*' | cut -d: -f2 | head -40 || true)
		for id in $maps; do
			run "map-$id" "${c[@]}" map dump id "$id"
			run "map-$id.json" "${c[@]}" --json map dump id "$id"
			run "mapkv-$id" "${c[@]}" map dump id "$id" --order memory
		done
		btfs=$("$bin" "${c[@]}" --json btf show 2>/dev/null | grep -o '"id":[0-9]*' | cut -d: -f2 | tail -8 || true)
		for id in $btfs; do
			run "btf-$id" "${c[@]}" btf dump id "$id"
			run "btf-$id-c" "${c[@]}" btf dump id "$id" format c
		done
	done
	echo "golden: $s done"
done
rm -f "$bin"
