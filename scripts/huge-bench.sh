#!/bin/bash
# What grows with a machine's memory (issue 14, docs/huge-dumps.md): wall
# time and user+sys CPU time (medians of RUNS, default 5) and peak RSS of
# `info`, `ps`, `prog show` and `triage` on each scenario's dumps (rc: the
# last run's exit status). Run after the lab built them; kd-16g is not in CI's set (go run
# ./lab kd-16g):
#
#   [KINSPECT=BINARY] [RUNS=N] scripts/huge-bench.sh [SCENARIO:FORMAT...]
#     default: kd-16g and kd-sysrq's kdump-zlib-d31, kdump-lzo-d31 and
#     elf-d31, basic's kdump-zlib-d31 and elf-d31
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
lab=${KINSPECT_LAB_DIR:-$HOME/.cache/kinspect-lab}
runs=${RUNS:-5}
bin=$(mktemp -d)/kinspect
if [ -n "${KINSPECT:-}" ]; then
	cp "$KINSPECT" "$bin" # a binary built elsewhere (another commit)
else
	go build -o "$bin" ./cmd/kinspect
fi
cases=("$@")
if [ ${#cases[@]} -eq 0 ]; then
	for s in kd-16g kd-sysrq; do
		for f in kdump-zlib-d31 kdump-lzo-d31 elf-d31; do cases+=("$s:$f"); done
	done
	cases+=(basic:kdump-zlib-d31 basic:elf-d31)
fi
printf "%-10s %-15s %6s %8s %-10s %8s %8s %8s %3s\n" scenario format RAM_MB file_MB command median_s cpu_s peak_MB rc
for c in "${cases[@]}"; do
	s=${c%%:*} f=${c#*:}
	dump=$lab/$s/dumps/$f
	[ -f "$dump" ] || { echo "$c: not built" >&2; continue; }
	mem=$(sed -n 's/.*"memory_mb": \([0-9]*\).*/\1/p' "$lab/$s/manifest.json")
	for cmd in info ps "prog show" triage; do
		times=()
		cpus=()
		peak=0
		for ((i = 0; i < runs; i++)); do
			# shellcheck disable=SC2086 # cmd is words
			/usr/bin/time -o "$bin.time" -f "%e %M %x %U %S" "$bin" -c "$dump" $cmd >/dev/null 2>&1 || true
			out=$(tail -1 "$bin.time")
			read -r t kb rc u sy <<<"$out"
			times+=("$t")
			cpus+=("$(awk "BEGIN { printf \"%.2f\", $u + $sy }")")
			[ "$kb" -gt "$peak" ] && peak=$kb
		done
		median=$(printf "%s\n" "${times[@]}" | sort -n | sed -n "$((runs / 2 + 1))p")
		cpu=$(printf "%s\n" "${cpus[@]}" | sort -n | sed -n "$((runs / 2 + 1))p")
		printf "%-10s %-15s %6s %8s %-10s %8s %8s %8s %3s\n" "$s" "$f" "$mem" "$(($(stat -c %s "$dump") >> 20))" "$cmd" "$median" "$cpu" "$((peak / 1024))" "$rc"
	done
done
