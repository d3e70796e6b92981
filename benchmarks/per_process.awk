# Per-message figures from benchmarks/sample_processes.sh, one line per 5-s interval: messages
# a second, then CPU µs a message of the hub's process (user, system), of its main thread, of
# the checker and of the file writer (system time in brackets), and of all three processes.
# Usage: awk -f benchmarks/per_process.awk /tmp/samples.txt
{
  n = $2; split($3, h, "[=,]"); split($4, m, "="); split($5, c, "[=,]"); split($6, w, "[=,]")
  if (pn != "" && n > pn) {
    d = n - pn
    hub = h[2] + h[3] - ph; chk = c[2] + c[3] - pc; wrt = w[2] + w[3] - pw
    printf "%s done=%d rate=%d/s hub=%.0f (user %.0f, sys %.0f) main=%.0f checker=%.0f (sys %.0f) writer=%.0f (sys %.0f) all=%.0f\n", \
      $1, n, d / 5, hub * 1e4 / d, (h[2] - phu) * 1e4 / d, (h[3] - phs) * 1e4 / d, \
      (m[2] - pm) * 1e4 / d, chk * 1e4 / d, (c[3] - pcs) * 1e4 / d, wrt * 1e4 / d, \
      (w[3] - pws) * 1e4 / d, (hub + chk + wrt) * 1e4 / d
  }
  pn = n; ph = h[2] + h[3]; phu = h[2]; phs = h[3]; pm = m[2]
  pc = c[2] + c[3]; pcs = c[3]; pw = w[2] + w[3]; pws = w[3]
}
