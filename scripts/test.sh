#!/bin/bash
# The project's test command: installs what the tests need, builds the lab
# scenarios (cached in ~/.cache/kinspect-lab, keyed by their inputs), then
# runs the checks and every test against them.
#
#   scripts/test.sh            the default scenarios
#   SCENARIOS="basic" scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# CI builds these; the other kdump scenarios (kd-sysrq, kd-bug, kd-hardirq,
# kd-warn, kd-hung, kd612-sysrq, kd612-oops) are run before an issue is
# resolved (see README):
#   SCENARIOS="basic-live k612-live $(go run ./lab list | awk '$1 !~ /NAME|kd-16g|avml/ {print $1}')" scripts/test.sh
KDUMP_CI="kd-oops kd-oops-post kd-softirq kd-stack kd-lockup kd612-bug"
SCENARIOS=${SCENARIOS:-"basic k612 la57 panic scale noinfo basic-live k612-live $KDUMP_CI"}
export PATH=$PATH:/usr/local/go/bin:$HOME/go/bin

command -v go >/dev/null || { echo "test.sh: Go 1.26 or newer is needed (/usr/local/go)"; exit 1; }
if ! command -v staticcheck >/dev/null; then
	go install honnef.co/go/tools/cmd/staticcheck@latest
fi

# binutils' objdump: linux's TestLabDisObjdump holds dis to it.
command -v objdump >/dev/null || apt-get install -y -qq binutils

start=$(date +%s)
# Two guests at once: each QEMU (TCG, single thread) takes one core.
go run ./lab -j 2 $SCENARIOS
echo "test.sh: lab ready in $(($(date +%s) - start)) s"

unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "test.sh: not gofmt'ed:"; echo "$unformatted"; exit 1
fi
go vet ./...
staticcheck ./...

export KINSPECT_LAB_REQUIRE=1
export KINSPECT_LAB_SCENARIOS=$(echo $SCENARIOS | tr ' ' ,)
go test -count=1 -timeout 30m ./...
echo "test.sh: done in $(($(date +%s) - start)) s"
