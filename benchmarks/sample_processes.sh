#!/bin/bash
# Samples a running bench hub (`cebhub bench --rate R --keep DIR`) every 5 s: messages done
# and the CPU ticks (user, system) of the hub's process, of its main thread alone, of the
# checker and of the file writer. Start it beside the bench:
#   benchmarks/sample_processes.sh DIR /tmp/samples.txt &
# stop it (kill) when the bench is done, and turn the samples into per-message figures with
#   awk -f benchmarks/per_process.awk /tmp/samples.txt
# The checker's CPU a message does not depend on how many messages are stored: where it rises
# with the others, the host slowed down (round 10).
KEEP=$1
OUT=$2
ticks() { [ -n "$1" ] && awk '{print $14 "," $15}' "$1" 2>/dev/null; }
while true; do
  hub=$(pgrep -f "run --log-format" | head -1)
  checker=$(pgrep -f "hub.checker import setup" | head -1)
  writer=$(pgrep -f "setup_writer" | head -1)
  main=$( [ -n "$hub" ] && awk '{print $14 + $15}' "/proc/$hub/task/$hub/stat" 2>/dev/null)
  done=$(grep -c '"done"' "$KEEP/ws/bench-run.log" 2>/dev/null)
  echo "$(date +%s) $done hub=$(ticks /proc/$hub/stat) main=$main" \
    "checker=$(ticks /proc/$checker/stat) writer=$(ticks /proc/$writer/stat)" >> "$OUT"
  sleep 5
done
