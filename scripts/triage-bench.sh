#!/bin/bash
# The kdump scenarios' report (issue 12): each dump's size per format, and
# kinspect triage's wall time (median of 5) and peak memory on the
# kdump-zlib-d31 dump. Run after the lab built them:
#
#   scripts/triage-bench.sh [SCENARIO...]     (default: every kd* built)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
lab=${KINSPECT_LAB_DIR:-$HOME/.cache/kinspect-lab}
bin=$(mktemp -d)/kinspect
go build -o "$bin" ./cmd/kinspect
scenarios=("$@")
if [ ${#scenarios[@]} -eq 0 ]; then
	for d in "$lab"/kd*/; do [ -f "$d/manifest.json" ] && scenarios+=("$(basename "$d")"); done
fi
printf "%-14s %9s %9s %9s %9s %9s  %8s %8s\n" scenario elf zlib-d31 lzo-d31 elf-d31 flat triage_s peak_MB
for s in "${scenarios[@]}"; do
	d=$lab/$s/dumps
	size() { [ -f "$d/$1" ] && echo "$(($(stat -c %s "$d/$1") >> 20))M" || echo -; }
	times=()
	peak=0
	for i in 1 2 3 4 5; do
		/usr/bin/time -o "$bin.time" -f "%e %M" "$bin" -c "$d/kdump-zlib-d31" triage >/dev/null 2>&1 || true
		out=$(tail -1 "$bin.time")
		times+=("${out% *}")
		kb=${out#* }
		[ "$kb" -gt "$peak" ] && peak=$kb
	done
	median=$(printf "%s\n" "${times[@]}" | sort -n | sed -n 3p)
	printf "%-14s %9s %9s %9s %9s %9s  %8s %8s\n" "$s" "$(size elf)" "$(size kdump-zlib-d31)" "$(size kdump-lzo-d31)" "$(size elf-d31)" "$(size kdump-zlib-d31.flat)" "$median" "$((peak / 1024))"
done
