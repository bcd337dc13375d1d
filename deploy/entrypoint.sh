#!/usr/bin/env bash
# Container entrypoint for attnviz.
#
#   (no arguments)   serve: python -m app.server (uvicorn app.main:app with the project's
#                    slow-client guards, app/server.py) with $WEB_CONCURRENCY workers on $HOST:$PORT
#   healthcheck      exit 0 when GET http://127.0.0.1:$PORT/healthz answers 200 (HEALTHCHECK)
#   threads          print the thread settings this container would use, and exit
#   anything else    run it (e.g. `attnviz train ...`), with the same thread settings
#
# The CPU cores the container may use (cgroup quota, else CPU affinity; os.cpu_count()
# would see every core of the host) are divided among the workers: each worker process gets
# cores / workers, shared by the app's ATTNVIZ_MAX_CONCURRENCY (default 2) inference threads,
# so ATTNVIZ_TORCH_THREADS = OMP_NUM_THREADS = cores / (workers x max_concurrency), at
# least 1, and N workers never oversubscribe the CPU.  Values set in the environment win.
#
# Slow and idle clients (each worker process): the request line and headers must arrive within
# ATTNVIZ_HEADER_TIMEOUT_S (10) and the body within ATTNVIZ_BODY_TIMEOUT_S (10), else the
# connection is closed (408); at most ATTNVIZ_MAX_CONNECTIONS (512, and never within 64 of the
# open-file limit) are open, more get 503 + Retry-After; an idle keep-alive connection is
# closed after KEEPALIVE_S (5).
set -euo pipefail

HOST="${HOST:-0.0.0.0}"
PORT="${PORT:-8000}"

# CPUs available to this container: the cgroup quota (docker --cpus, k8s limits.cpu) if
# one is set, else the CPUs we may run on (cpuset / affinity, what nproc reports).
available_cpus() {
  local n quota period
  n="$(nproc 2>/dev/null || echo 1)"
  if [[ -r /sys/fs/cgroup/cpu.max ]]; then                     # cgroup v2: "max 100000" or "200000 100000"
    read -r quota period </sys/fs/cgroup/cpu.max || true
  elif [[ -r /sys/fs/cgroup/cpu/cpu.cfs_quota_us && -r /sys/fs/cgroup/cpu/cpu.cfs_period_us ]]; then
    quota="$(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us)"         # cgroup v1: -1 = no quota
    period="$(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us)"
  fi
  if [[ "${quota:-max}" =~ ^[0-9]+$ && "${period:-0}" =~ ^[0-9]+$ && "$period" -gt 0 ]]; then
    local q=$(( (quota + period - 1) / period ))                 # round a fractional quota up
    (( q >= 1 && q < n )) && n="$q"
  fi
  echo "$n"
}

CPUS="$(available_cpus)"
WORKERS="${WEB_CONCURRENCY:-1}"
if [[ "$WORKERS" == auto ]]; then WORKERS="$CPUS"; fi
[[ "$WORKERS" =~ ^[1-9][0-9]*$ ]] || { echo "WEB_CONCURRENCY must be a positive integer or 'auto', got '$WORKERS'" >&2; exit 2; }
CONCURRENCY="${ATTNVIZ_MAX_CONCURRENCY:-2}"
[[ "$CONCURRENCY" =~ ^[1-9][0-9]*$ ]] || CONCURRENCY=1
THREADS=$(( CPUS / (WORKERS * CONCURRENCY) ))
(( THREADS >= 1 )) || THREADS=1

export WEB_CONCURRENCY="$WORKERS"
export ATTNVIZ_TORCH_THREADS="${ATTNVIZ_TORCH_THREADS:-$THREADS}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$ATTNVIZ_TORCH_THREADS}"
export MKL_NUM_THREADS="${MKL_NUM_THREADS:-$OMP_NUM_THREADS}"

case "${1:-serve}" in
  healthcheck)
    exec python - "$PORT" <<'PY'
import sys, urllib.request
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/healthz", timeout=4) as r:
        sys.exit(0 if r.status == 200 else 1)
except Exception as exc:  # any failure = unhealthy
    print(f"unhealthy: {exc}", file=sys.stderr)
    sys.exit(1)
PY
    ;;
  threads)
    echo "cpus=$CPUS workers=$WEB_CONCURRENCY max_concurrency=$CONCURRENCY ATTNVIZ_TORCH_THREADS=$ATTNVIZ_TORCH_THREADS OMP_NUM_THREADS=$OMP_NUM_THREADS"
    exit 0
    ;;
  serve)
    echo "attnviz: ${WEB_CONCURRENCY} worker(s) on ${HOST}:${PORT}, ${CPUS} CPU(s)," \
         "torch threads per inference thread ${ATTNVIZ_TORCH_THREADS}, device ${ATTNVIZ_DEVICE:-auto}" >&2
    exec python -m app.server \
      --host "$HOST" --port "$PORT" \
      --workers "$WEB_CONCURRENCY" \
      --proxy-headers --forwarded-allow-ips "${FORWARDED_ALLOW_IPS:-127.0.0.1}" \
      --timeout-keep-alive "${KEEPALIVE_S:-5}" \
      --timeout-graceful-shutdown 10
    ;;
  *)
    exec "$@"
    ;;
esac
