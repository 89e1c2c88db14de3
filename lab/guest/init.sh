#!/bin/busybox sh
# The lab guest's /init: set up, start the workload, capture the truth
# into /truth (the host's directory over virtio 9p), then wait to be dumped.
# It prints "lab: ..." lines on the console, which the host follows.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
say() {
	read -r up _ < /proc/uptime
	echo "lab: $* (uptime $up)" > /dev/console
}
fail() { say "FAILED $*"; sleep 5; poweroff -f; }

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /tmp /run /truth /sys/fs/bpf
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
mount -t bpf bpf /sys/fs/bpf
mount -t debugfs debugfs /sys/kernel/debug
mount -t tracefs tracefs /sys/kernel/tracing
mount -t cgroup2 cgroup2 /sys/fs/cgroup
ip link set lo up 2>/dev/null
# A kdump capture kernel: save the dump (lab/guest/kdump.sh) and power off.
if [ -e /proc/vmcore ]; then
	. /kdump.sh
	kdump_capture
fi

scale=; panic=; live=; crash=; lockup=; lime=
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	ki.scale=1) scale=-scale ;;
	ki.panic=1) panic=1 ;;
	ki.live=1) live=1 ;;
	ki.crash=*) crash=${arg#ki.crash=} ;;
	ki.lime=1) lime=1 ;;
	esac
done
[ "$crash" = lockup ] && lockup=-lockup

for m in $(cat /lib/modules/load-order); do
	insmod /lib/modules/$m.ko || fail "insmod $m"
done
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 truth /truth || fail "mount 9p"
say stage mounted
if [ -n "$crash" ]; then
	. /kdump.sh
	kdump_load
fi

# Network devices of several kinds for net's device truth (ip -d link):
# iproute2's ip and tc (busybox's ip has no -d, -j or link kinds).
I=/usr/lib/iproute2
netdevs() {
	$I/ip link add ki_dummy0 type dummy &&
		$I/ip link set ki_dummy0 mtu 9000 txqueuelen 500 group 7 alias "kinspect lab dummy" &&
		$I/ip link set ki_dummy0 promisc on allmulticast on &&
		$I/ip link add ki_veth0 type veth peer name ki_veth1 &&
		$I/ip link property add dev ki_dummy0 altname ki_dummy_alt &&
		$I/ip link add link ki_dummy0 name ki_vlan7 type vlan id 7 &&
		$I/ip netns add ki_ns &&
		$I/ip link add ki_veth2 type veth peer name ki_veth3 netns ki_ns &&
		$I/ip -n ki_ns link set ki_veth3 up &&
		$I/ip link add ki_br0 type bridge &&
		$I/ip link set ki_veth1 master ki_br0 &&
		$I/ip addr add 10.77.0.1/24 dev ki_veth0 &&
		$I/ip addr add 10.77.1.1/24 dev ki_br0 &&
		$I/ip addr add fd00:77::1/64 dev ki_dummy0 &&
		for d in ki_dummy0 ki_vlan7 ki_veth0 ki_veth1 ki_veth2 ki_br0; do $I/ip link set $d up || return 1; done
}
netdevs > /tmp/netdevs.log 2>&1 || fail "network devices: $(cat /tmp/netdevs.log)"

echo 0 > /proc/sys/kernel/kptr_restrict
echo 1 > /proc/sys/net/core/bpf_jit_enable
echo 1 > /proc/sys/net/core/bpf_jit_kallsyms
echo 1 > /proc/sys/kernel/sysrq
# Keep the console quiet so dmesg is the kernel's alone.
echo 1 > /proc/sys/kernel/printk

T=/truth
mkdir -p $T/bpftool $T/xlated $T/maps $T/btf $T/jited $T/proc
uname -r > $T/uname.txt
# Probe features before the workload, so the probe's own programs are gone
# by the time of the dump.
bpftool feature probe kernel --json > $T/bpftool/feature.json 2> $T/bpftool/feature.err
say stage probed

# -testrun: the workload test-runs its programs and writes the truth of
# the runs (truth/testrun/NAME.json) before it is ready.
# The spinner waits for SIGUSR1: under TCG the guest's CPUs share one host
# thread, and the truth is captured twice as fast without it.
workload run -bpfdir /bpf -ready /run/workload.ready -testrun $T/testrun -spin-on-signal $scale $lockup > $T/workload.log 2>&1 &
wpid=$!
n=0
while [ ! -e /run/workload.ready ]; do
	kill -0 $wpid 2>/dev/null || fail "workload exited: $(tail -5 $T/workload.log)"
	n=$((n + 1))
	[ $n -gt 1800 ] && fail "workload not ready after 1800 s"
	sleep 1
done
cp /run/workload.ready $T/workload.json
say stage workload-ready
# Programs attached through netlink, which the workload (cilium/ebpf)
# does not do: XDP in driver mode and cls_bpf filters on clsact.
netprogs() {
	$I/ip link set dev ki_veth0 xdpdrv pinned /sys/fs/bpf/ki_net_xdp &&
		$I/tc qdisc add dev ki_veth0 clsact &&
		$I/tc filter add dev ki_veth0 ingress bpf object-pinned /sys/fs/bpf/ki_net_tc direct-action &&
		$I/tc filter add dev ki_veth0 egress bpf object-pinned /sys/fs/bpf/ki_net_tc direct-action
}
netprogs > /tmp/netprogs.log 2>&1 || fail "network devices' programs: $(cat /tmp/netprogs.log)"

# Count program runs for a moment, then freeze the counts, so that
# bpftool's run_time_ns/run_cnt and the dump's agree. The sleep itself
# runs do_nanosleep, where ki_kprobe and ki_fentry are attached.
echo 1 > /proc/sys/kernel/bpf_stats_enabled
sleep 1
echo 0 > /proc/sys/kernel/bpf_stats_enabled

b() { # b FILE ARGS...: bpftool ARGS > FILE, its errors beside it
	out=$1
	shift
	bpftool "$@" > $out 2> $out.err
	echo $? > $out.rc
	[ -s $out.err ] || rm -f $out.err
}

for noun in prog map link btf; do
	b $T/bpftool/$noun.json $noun show --json
	b $T/bpftool/$noun.txt $noun show
done
b $T/bpftool/net.json net show --json
b $T/bpftool/perf.json perf show --json
b $T/bpftool/cgroup.json cgroup tree --json
b $T/bpftool/struct_ops.json struct_ops show --json
b $T/bpftool/struct_ops.txt struct_ops show
b $T/bpftool/struct_ops_dump.json struct_ops dump --json
b $T/bpftool/struct_ops_dump.txt struct_ops dump
# Pinned paths (-f walks every bpffs mount).
for noun in prog map link; do
	b $T/bpftool/${noun}_f.json $noun show -f --json
	b $T/bpftool/${noun}_f.txt $noun show -f
done
# Who holds each object: this bpftool has no pid iterator (no skeletons),
# so "PID COMM FD KIND ID" for every BPF fd of every process.
for d in /proc/[0-9]*; do
	for f in $d/fd/*; do
		case "$(readlink $f 2>/dev/null)" in
		anon_inode:bpf-prog) kind=prog ;;
		anon_inode:bpf-map) kind=map ;;
		anon_inode:bpf_link) kind=link ;;
		*) continue ;;
		esac
		fd=${f##*/}
		id=$(sed -n "s/^${kind}_id:[[:space:]]*//p" $d/fdinfo/$fd 2>/dev/null)
		echo "${d#/proc/} $(cat $d/comm) $fd $kind $id"
	done
done > $T/bpftool/fdinfo.txt

# "ID NAME" of each object of a noun.
idnames() {
	bpftool $1 show | while read -r first _ rest; do
		case "$first" in *:) ;; *) continue ;; esac
		name=
		case "$rest" in "name "*) name=${rest#name } ;; esac
		echo "${first%:} ${name%% *}"
	done
}
# In the scale scenario the ~500 programs ki_sNNNN are copies of one
# program: only a few of them are dumped (bpftool costs seconds a run here).
sampled() {
	[ -z "$scale" ] && return 0
	case "$1" in
	ki_s000[0-3] | ki_s0499) return 0 ;;
	ki_s[0-9][0-9][0-9][0-9]) return 1 ;;
	esac
	return 0
}
idnames prog > /tmp/progs
while read -r id name; do
	sampled "$name" || continue
	b $T/xlated/$id.txt prog dump xlated id $id
	b $T/xlated/$id.opcodes.txt prog dump xlated id $id opcodes
	b $T/xlated/$id.linum.txt prog dump xlated id $id linum
	b $T/xlated/$id.json prog dump xlated id $id --json
	b $T/xlated/$id.dot prog dump xlated id $id visual
done < /tmp/progs
say stage xlated
idnames map > /tmp/maps
while read -r id name; do
	if [ -n "$scale" ] && [ "$name" = ki_big_hash ]; then
		# A million entries through bpftool would take an hour here: some
		# lookups, and the workload's description of every entry.
		for k in "0 0 0 0" "1 0 0 0" "0xff 0xff 0 0" "0x3f 0x42 0x0f 0"; do
			bpftool map lookup id $id key $k --json >> $T/maps/$id.lookups.json 2>&1
		done
		continue
	fi
	b $T/maps/$id.json map dump id $id --json
	b $T/maps/$id.txt map dump id $id
done < /tmp/maps
say stage maps
bpftool btf show | while read -r line; do
	id=${line%%:*}
	# Kernel and module BTF ("name [9p]") are read from memory by kinspect,
	# and dumping them is slow here: only the workload's BTF is dumped.
	case "$line" in *"name ["*) continue ;; esac
	b $T/btf/$id.txt btf dump id $id
	b $T/btf/$id.c btf dump id $id format c
done
workload jited $T/jited > $T/jited.log 2>&1 || fail "workload jited: $(tail -3 $T/jited.log)"
say stage bpf-truth

cat /proc/kallsyms > $T/kallsyms.txt
cat /proc/modules > $T/modules.txt
cat /proc/iomem > $T/proc/iomem.txt
cat /proc/meminfo > $T/proc/meminfo.txt
# The workload's own RssAnon as meminfo was read: what its anonymous
# memory moved by before the dump is then measured, not guessed.
cat /proc/$wpid/status > $T/proc/meminfo_workload.status
cat /proc/mounts > $T/proc/mounts.txt
cat /proc/slabinfo > $T/proc/slabinfo.txt 2>/dev/null
cat /proc/net/dev > $T/proc/net_dev.txt
cat /proc/sys/kernel/tainted > $T/proc/tainted.txt
cat /proc/cmdline > $T/proc/cmdline.txt
cat /sys/kernel/vmcoreinfo > $T/proc/vmcoreinfo_note.txt 2>/dev/null
# For crash's irq, timer, runq, dev and net (sockets), and uptime/loadavg.
for f in interrupts timer_list loadavg uptime devices stat vmallocinfo; do
	cat /proc/$f > $T/proc/$f.txt 2>/dev/null
done
for f in tcp tcp6 udp udp6 raw unix; do
	cat /proc/net/$f > $T/proc/net_$f.txt 2>/dev/null
done
# For btf funcs: every function's prototype and which ftrace can trace.
cat /sys/kernel/tracing/available_filter_functions > $T/proc/available_filter_functions.txt 2>/dev/null
b $T/btf/vmlinux.txt btf dump file /sys/kernel/btf/vmlinux
ip link show > $T/proc/ip_link.txt 2>&1
# iproute2's: every detail (-d) of every link and address, as text and JSON.
$I/ip -d link show > $T/proc/ip_d_link.txt 2>&1
$I/ip -d -j link show > $T/proc/ip_d_link.json 2>&1
$I/ip -d addr show > $T/proc/ip_d_addr.txt 2>&1
$I/ip -d -j addr show > $T/proc/ip_d_addr.json 2>&1
$I/tc -j qdisc show > $T/proc/tc_qdisc.json 2>&1
$I/ip -n ki_ns -d link show > $T/proc/ip_d_link_ki_ns.txt 2>&1
$I/ip -n ki_ns -d -j link show > $T/proc/ip_d_link_ki_ns.json 2>&1
$I/ip netns list-id > $T/proc/ip_netns_list_id.txt 2>&1
for d in /proc/[0-9]*; do
	p=${d#/proc/}
	# Kernel threads have no executable (procfs files all have size 0, so
	# -s cannot tell).
	[ -e $d/exe ] || continue
	cat $d/status > $T/proc/$p.status 2>/dev/null
	ls -l $d/fd > $T/proc/$p.fd 2>/dev/null
	cat $d/maps > $T/proc/$p.maps 2>/dev/null
done

if [ -n "$live" ]; then
	mkdir -p $T/live
	i=0
	while read -r line; do
		[ -z "$line" ] && continue
		case "$line" in "#"*) continue ;; esac
		i=$((i + 1))
		echo "$line" > $T/live/$i.cmd
		# The kernel's thread count (loadavg's nr_threads) just before
		# and after: what a live count of tasks is checked against.
		cat /proc/loadavg > $T/live/$i.loadavg
		kinspect --live $line > $T/live/$i.out 2> $T/live/$i.err
		echo $? > $T/live/$i.rc
		cat /proc/loadavg >> $T/live/$i.loadavg
	done < /live-commands
	say stage live
fi

# Running CPUs have no /proc/PID/stack: an NMI backtrace of every CPU
# goes to dmesg instead.
kill -USR1 $wpid
sleep 2
# From CPU 0: a shell on the spinner's CPU would preempt it and hide it.
taskset 1 sh -c "echo l > /proc/sysrq-trigger"
sleep 2
dmesg > $T/dmesg.txt

# The panic trigger waits on the console for the host's word, and is in
# place before the snapshot so that the snapshot's task list is the dump's.
# A crash (kdump scenarios) runs on CPU 0, away from the spinner, and so
# does the LiME capture ("lime", after QEMU's dumps: lime.sh).
(
	read -r cmd
	case "$cmd" in
	panic) echo c > /proc/sysrq-trigger ;;
	crash) kdump_crash ;;
	lime) . /lime.sh ;;
	esac
) < /dev/console &
[ -n "$crash$lime" ] && taskset -p 1 $! > /dev/null
sleep 1
# Last: every task and its stack, read in one process that leaves nothing behind.
workload snapshot $T || fail "workload snapshot"
sync
say truth-done
# From here on init sleeps in wait4, as it did during the snapshot.
wait
say "workload exited"
sleep 100000
