# kdump.sh: sourced by /init in the lab's kdump scenarios (ki.crash=NAME).
# The first kernel loads the crash module and a capture kernel (kdump_load),
# captures the truth as every scenario does, then crashes the way NAME says
# (kdump_crash). The capture kernel boots the same initramfs: /init finds
# /proc/vmcore and saves it in every format (kdump_capture), then powers off.
# The host's scenario directory is shared over 9p as "scenario": it holds
# the capture kernel (capture-vmlinuz, capture-cmdline), this initramfs,
# dumps/ and truth/.

kdump_mount() {
	mkdir -p /scn
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 scenario /scn || fail "mount 9p scenario"
}

# kdump_load: in the first kernel, after the modules are loaded.
kdump_load() {
	insmod /lib/modules/kicrash.ko || fail "insmod kicrash"
	kdump_mount
	# kexec_file_load (-s) reads both files now: the share can go.
	kexec -p -s --initrd=/scn/initramfs.cpio --append="$(cat /scn/capture-cmdline)" \
		/scn/capture-vmlinuz > /tmp/kexec.log 2>&1 || fail "kexec -p: $(tail -3 /tmp/kexec.log)"
	umount /scn
	[ "$(cat /sys/kernel/kexec_crash_loaded)" = 1 ] || fail "kexec -p loaded no capture kernel"
	say stage kexec-loaded
}

# kdump_crash: in the first kernel, in the trigger subshell (bound to CPU
# 0, while the spinner runs ki_spin on CPU 1). $crash is the scenario's
# crash: a kicrash trigger, or sysrq, lockup, hung, warn.
kdump_crash() {
	k=/proc/sys/kernel
	trig=/sys/kernel/debug/kicrash/trigger
	# The whole report on the console (init.sh keeps it quiet until now).
	echo 8 > $k/printk
	say crashing "$crash"
	# The same line in the kernel's log, where a report the console never
	# shows (from the double fault handler) is found after it.
	echo "lab: crashing $crash" > /dev/kmsg
	# The console is written by interrupt: a line written just before the
	# crash is lost.
	sleep 1
	case "$crash" in
	sysrq)
		echo c > /proc/sysrq-trigger
		;;
	lockup)
		# Set now, not at boot: under TCG a long stretch of kernel work
		# (BTF parsing, say) would trip a 2 s watchdog during the truth.
		echo 1 > $k/softlockup_all_cpu_backtrace
		echo 1 > $k/softlockup_panic
		echo 1 > $k/watchdog_thresh
		# The workload's ki_lockup thread (bound to CPU 0) runs ki_lockup.
		kill -USR2 $wpid
		sleep 100000
		;;
	hung)
		# No hung_task_all_cpu_backtrace: CPU 1 would print its own NMI
		# backtrace to the console (slow under TCG) and be stopped by the
		# panic's NMI in serial8250_console_write, not in ki_spin; and the
		# console would lose the rest of the report.
		echo 1 > $k/hung_task_panic
		# khungtaskd on this CPU, so that it panics here, not on the spinner's.
		taskset -p 1 "$(pidof khungtaskd)" > /dev/null
		echo 3 > $k/hung_task_timeout_secs
		echo hung > $trig
		;;
	warn)
		echo 1 > $k/panic_on_warn
		echo warn > $trig
		;;
	*)
		echo "$crash" > $trig
		;;
	esac
	say "FAILED crash $crash returned"
	sleep 100000
}

# kdump_capture: in the capture kernel. Never returns.
kdump_capture() {
	say capture-start
	for m in $(cat /lib/modules/load-order); do
		insmod /lib/modules/$m.ko || fail "capture: insmod $m"
	done
	kdump_mount
	D=/scn/dumps
	L=/scn/truth/kdump
	mkdir -p $L
	cat /proc/cmdline > $L/cmdline.txt
	cat /proc/meminfo > $L/meminfo.txt
	ls -ln /proc/vmcore > $L/vmcore.txt
	# save NAME CMD...: CMD's messages to truth/kdump/NAME.log; saveflat
	# also its output to dumps/NAME. makedumpfile's progress (message
	# level 1) would be most of its log.
	save() {
		name=$1
		shift
		t0=$(date +%s)
		"$@" > $L/$name.log 2>&1 || fail "capture: $name: $(tail -3 $L/$name.log)"
		say "made $name in $(($(date +%s) - t0)) s"
	}
	saveflat() {
		name=$1
		shift
		t0=$(date +%s)
		"$@" > $D/$name 2> $L/$name.log || fail "capture: $name: $(tail -3 $L/$name.log)"
		say "made $name in $(($(date +%s) - t0)) s"
	}
	# The crashed kernel's log, with what it never printed on the console.
	save vmcore-dmesg makedumpfile --message-level 6 --dump-dmesg /proc/vmcore $L/vmcore-dmesg.txt
	save elf cp /proc/vmcore $D/elf
	save kdump-zlib-d31 makedumpfile --message-level 6 -c -d 31 /proc/vmcore $D/kdump-zlib-d31
	save kdump-lzo-d31 makedumpfile --message-level 6 -l -d 31 /proc/vmcore $D/kdump-lzo-d31
	save elf-d31 makedumpfile --message-level 6 -E -d 31 /proc/vmcore $D/elf-d31
	saveflat kdump-zlib-d31.flat makedumpfile --message-level 6 -F -c -d 31 /proc/vmcore
	dmesg > $L/dmesg.txt
	chmod 644 $D/*
	sync
	umount /scn
	say capture-done
	poweroff -f
}
