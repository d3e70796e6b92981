# Per-message figures from benchmarks/sample_hub.sh's samples, one line per 5-s interval:
# messages answered a second, the hub process's CPU (µs) and bytes read and written (KiB)
# a message. Usage: awk -f benchmarks/per_message.awk /tmp/samples.txt
{
  split($4, d, "="); split($5, c, "="); split($6, r, "=")
  if (prev != "" && d[2] - prev > 0) {
    n = d[2] - prev
    printf "%s answered=%s rate=%d/s cpu=%.0fus read=%.0fKiB write=%.0fKiB\n", $1, d[2], n / 5, (c[2] - pc) * 10000 / n, (r[2] - pr) / n / 1024, ($7 - pw) / n / 1024
  }
  prev = d[2]; pc = c[2]; pr = r[2]; pw = $7
}
