# avml.sh: the avml scenario's /lime.sh, sourced by the trigger subshell
# of /init when the host, after QEMU's dumps, sends "lime". avml (an
# external binary: lab/README.md, AVML) reads the guest's memory through
# /proc/kcore and writes each "System RAM" range of /proc/iomem,
# snappy-compressed (--compress: AVML's version-2 headers), into the
# host's truth directory (9p). The capture holds one task the truth does
# not: that avml process (truth/lime.json: tool, pid, parent).
read -r self _ < /proc/self/stat
/bin/avml --compress /truth/avml.capture > /truth/avml.log 2>&1 &
pid=$!
wait $pid
rc=$?
echo "{\"tool\": \"avml\", \"pid\": $pid, \"parent\": $self, \"rc\": $rc}" > /truth/lime.json
say avml-done
