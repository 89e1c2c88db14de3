# lime.sh: sourced by the trigger subshell of /init (a LiME scenario) when
# the host, after QEMU's dumps, sends "lime". insmod of lime.ko captures
# the guest's memory into the host's truth directory (9p) before it
# returns: format=lime writes each "System RAM" range of /proc/iomem behind
# a 32-byte header; timeout=0 keeps LiME from zero-filling the rest of a
# range when a page takes over a second to write (its default, 1000 ms).
# Only shell builtins run here besides insmod, so the capture holds one
# task the truth does not: that insmod (truth/lime.json: pid, parent).
read -r self _ < /proc/self/stat
insmod /lib/modules/lime.ko path=/truth/lime.capture format=lime timeout=0 &
pid=$!
wait $pid
rc=$?
echo "{\"pid\": $pid, \"parent\": $self, \"rc\": $rc}" > /truth/lime.json
say lime-done
