#!/bin/bash
# Samples a running bench hub every 5 s: WAL size, database size, messages answered, the hub
# process's CPU ticks and /proc/<pid>/io (rchar wchar syscr syscw read_bytes write_bytes
# cancelled_write_bytes). Start it beside `cebhub bench ... --keep DIR`:
#   benchmarks/sample_hub.sh DIR /tmp/samples.txt &
# and turn the samples into per-message figures with benchmarks/per_message.awk.
KEEP=$1
OUT=$2
while true; do
  ws=$KEEP/ws
  pid=$(pgrep -f "run --log-format" | head -1)
  wal=$(stat -c %s "$ws/cebhub.db-wal" 2>/dev/null)
  db=$(stat -c %s "$ws/cebhub.db" 2>/dev/null)
  io=""
  cpu=""
  if [ -n "$pid" ]; then
    io=$(awk '{printf "%s ", $2}' "/proc/$pid/io" 2>/dev/null)
    cpu=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null)
  fi
  done=$(grep -c '"done"' "$ws/bench-run.log" 2>/dev/null)
  echo "$(date +%T) wal=$wal db=$db done=$done cpu=$cpu io=$io" >> "$OUT"
  sleep 5
done
