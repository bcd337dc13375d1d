#!/usr/bin/env bash
# make image-test: build the real Dockerfile with podman, run the image and check it over
# its published port; then run 2 uvicorn processes behind nginx on 127.0.0.1 and show that
# requests spread over both; then print requests/s of 1 worker, 2 workers and 2 replicas
# behind nginx (plus the container), measured with `hey` on loopback.
#
# Everything listens on and is loaded through 127.0.0.1 only.  Cleans up on exit.
#
# Environment (all optional):
#   BASE_IMAGE        base for the build (default localhost/attnviz-base:bookworm, made with
#                     deploy/make-base-image.sh when missing; python:3.11-slim where pullable)
#   TORCH_WHEEL_DIR   local directory holding the CPU torch wheel (default /opt/wheels);
#                     empty: take torch from PyTorch's CPU index instead
#   IMAGE             tag to build (default localhost/attnviz:test); KEEP_IMAGE=0 removes it
#   LOAD_SECONDS      duration of each load test (default 10), LOAD_CONNS (default 32)
#   BENCH_CACHE_SIZE  the app's result cache in the servers under test (default 0: every
#                     request runs the model; the app's own default, 256, measures cache hits)
#   SKIP_BUILD=1      reuse an existing $IMAGE;  SKIP_LOAD=1  skip the load tests
#   PODMAN_RUNTIME    OCI runtime (default runc);  VENV  (default .venv)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="${VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
PODMAN="${PODMAN:-podman}"
RUNTIME="${PODMAN_RUNTIME:-runc}"
IMAGE="${IMAGE:-localhost/attnviz:test}"
BASE_IMAGE="${BASE_IMAGE:-localhost/attnviz-base:bookworm}"
TORCH_WHEEL_DIR="${TORCH_WHEEL_DIR-/opt/wheels}"
LOAD_SECONDS="${LOAD_SECONDS:-10}"
LOAD_CONNS="${LOAD_CONNS:-32}"
CHECK_TEXT="the black cat ate the mouse"
LOAD_TEXT="the cat sat on the mat"
LIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

T0=$SECONDS
TMP="$(mktemp -d /tmp/attnviz-image-test.XXXXXX)"
CTR="attnviz-image-test-$$"
PIDS=()
NGINX_STARTED=0

log()  { printf '\n== [%3ss] %s\n' "$((SECONDS - T0))" "$*"; }
ok()   { printf '   ok  %s\n' "$*"; }
fail() { printf '   FAIL %s\n' "$*" >&2; exit 1; }

cleanup() {
  local rc=$?
  set +e
  if [[ $NGINX_STARTED == 1 ]]; then nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" -s stop 2>/dev/null; fi
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null
  done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null
  done
  "$PODMAN" rm --ignore -f -t 2 "$CTR" "$CTR-offline" >/dev/null 2>&1
  if [[ "${KEEP_IMAGE:-1}" == 0 ]]; then "$PODMAN" rmi -f "$IMAGE" >/dev/null 2>&1; fi
  if [[ $rc != 0 ]]; then
    echo "--- image-test FAILED (rc=$rc); last lines of the logs:" >&2
    for f in "$TMP"/*.log "$TMP"/nginx/logs/*.log; do
      [[ -s $f ]] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }
    done
  fi
  rm -rf "$TMP"
  echo "image-test: $((SECONDS - T0)) s in all (rc=$rc)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------
log "preflight"
[[ -x "$PY" ]] || fail "no venv python at $PY (run it as \`make image-test\`, which builds the venv)"
missing=()
tools=(podman:podman runc:runc nginx:nginx hey:hey wrk:wrk curl:curl)
# the base image is made with debootstrap when it is the local one and not there yet
[[ $BASE_IMAGE == localhost/attnviz-base:* && "${SKIP_BUILD:-0}" != 1 ]] && tools+=(debootstrap:debootstrap)
for t in "${tools[@]}"; do
  command -v "${t%%:*}" >/dev/null || missing+=("${t#*:}")
done
if ((${#missing[@]})); then
  [[ $(id -u) == 0 ]] || fail "missing: ${missing[*]} (apt-get install ${missing[*]})"
  echo "installing Debian packages: ${missing[*]}"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >"$TMP/apt.log" 2>&1 \
    || fail "apt-get install ${missing[*]} (see above)"
fi
for f in app/main.py Dockerfile pyproject.toml README.md; do [[ -e $f ]] || fail "missing $f"; done
free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
P_CTR=$(free_port); P_A=$(free_port); P_B=$(free_port); P_LB=$(free_port); P_ONE=$(free_port); P_TWO=$(free_port)
ok "tools present; ports: container $P_CTR, replicas $P_A $P_B, nginx $P_LB, bench $P_ONE $P_TWO"

# ---------------------------------------------------------------------------------------
# How this host's pip reaches PyPI, passed into the build without writing it anywhere:
# a CA bundle (TLS-inspecting proxy) is mounted read-only and named by PIP_CERT; an
# index URL (mirror) is passed as a build arg; proxy variables are passed by podman itself.
pip_cfg() { # $1 = env var name, $2 = pip config key
  local v="${!1:-}"
  [[ -n $v ]] || v="$("$VENV/bin/pip" config get "global.$2" 2>/dev/null || true)"
  printf '%s' "$v"
}
BUILD_ARGS=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
BUILD_VOLS=()
cert="$(pip_cfg PIP_CERT cert)"
[[ -z $cert && -f /etc/ssl/certs/ca-certificates.crt ]] && cert=/etc/ssl/certs/ca-certificates.crt
if [[ -n $cert && -f $cert ]]; then
  BUILD_VOLS+=(--volume "$cert:/etc/ssl/certs/attnviz-build-ca.crt:ro")
  BUILD_ARGS+=(--build-arg "PIP_CERT=/etc/ssl/certs/attnviz-build-ca.crt")
fi
index="$(pip_cfg PIP_INDEX_URL index-url)"
[[ $index == http* ]] && BUILD_ARGS+=(--build-arg "PIP_INDEX_URL=$index")
if [[ -n $TORCH_WHEEL_DIR ]]; then
  compgen -G "$TORCH_WHEEL_DIR/torch-*.whl" >/dev/null || fail "no torch wheel in $TORCH_WHEEL_DIR"
  BUILD_VOLS+=(--volume "$(cd "$TORCH_WHEEL_DIR" && pwd):/tmp/torch-wheels:ro")
  BUILD_ARGS+=(--build-arg "TORCH_WHEEL_DIR=/tmp/torch-wheels")
  # match the wheel's version, so the pin in the Dockerfile finds it
  whl="$(find "$TORCH_WHEEL_DIR" -maxdepth 1 -name 'torch-*+cpu-*.whl' -printf '%f\n' | sort -V | tail -n1)"
  ver="${whl#torch-}"; ver="${ver%%+*}"
  BUILD_ARGS+=(--build-arg "TORCH_VERSION=$ver")
fi

if [[ "${SKIP_BUILD:-0}" != 1 ]]; then
  if [[ $BASE_IMAGE == localhost/attnviz-base:* ]] && ! "$PODMAN" image exists "$BASE_IMAGE"; then
    log "base image $BASE_IMAGE (debootstrap)"
    bash deploy/make-base-image.sh "$BASE_IMAGE"
  fi
  log "podman build $IMAGE (BASE_IMAGE=$BASE_IMAGE, torch from ${TORCH_WHEEL_DIR:-the PyTorch CPU index})"
  old_id="$("$PODMAN" image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
  b0=$SECONDS
  "$PODMAN" build --runtime "$RUNTIME" "${LIMITS[@]}" --format docker --layers \
    "${BUILD_VOLS[@]}" "${BUILD_ARGS[@]}" -t "$IMAGE" -f Dockerfile . >"$TMP/build.log" 2>&1 \
    || { tail -n 40 "$TMP/build.log"; fail "podman build"; }
  BUILD_S=$((SECONDS - b0))
  # the previous build of this tag is now untagged: drop it (ignored if still in use)
  new_id="$("$PODMAN" image inspect --format '{{.Id}}' "$IMAGE")"
  if [[ -n $old_id && $old_id != "$new_id" ]]; then "$PODMAN" rmi "$old_id" >/dev/null 2>&1 || true; fi
  ok "built in ${BUILD_S} s"
fi
SIZE="$("$PODMAN" image inspect --format '{{.Size}}' "$IMAGE")"
ok "image size: $((SIZE / 1000000)) MB ($IMAGE)"
USER_="$("$PODMAN" image inspect --format '{{.Config.User}}' "$IMAGE")"
[[ $USER_ =~ ^[1-9] ]] || fail "image user is '$USER_' (root)"
ok "runs as user $USER_ (not root)"
"$PODMAN" image inspect --format '{{json .Config.Healthcheck}}' "$IMAGE" | grep -q healthcheck || fail "no HEALTHCHECK in the image"
ok "HEALTHCHECK set"

# ---------------------------------------------------------------------------------------
http_ok() { curl -fsS -o /dev/null --max-time 5 "$1"; }
idle_closed() { # $1 = port, $2 = seconds: a connection that sends nothing is closed by then
  "$PY" - "$1" "$2" <<'PY'
import socket, sys, time
limit = float(sys.argv[2])
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=limit + 10)
t0 = time.monotonic()
try:
    data = s.recv(1)
except OSError:
    data = b""  # reset: closed as well
took = time.monotonic() - t0
print(f"{took:.1f}")
sys.exit(0 if data == b"" and took <= limit + 3 else 1)
PY
}
wait_ready() { # $1 = base url, $2 = what
  for _ in $(seq 120); do
    http_ok "$1/readyz" 2>/dev/null && return 0
    sleep 0.5
  done
  fail "$2 not ready after 60 s"
}
check_api() { # $1 = base url, $2 = what; sets MODEL
  local models code
  http_ok "$1/healthz" || fail "$2: /healthz"
  ok "$2: GET /healthz 200"
  models="$(curl -fsS --max-time 10 "$1/api/v1/models")" || fail "$2: /api/v1/models"
  MODEL="$(printf '%s' "$models" | "$PY" -c 'import json,sys; m=json.load(sys.stdin)["models"]; print(m[0]["id"] if m else "")')"
  [[ -n $MODEL ]] || fail "$2: /api/v1/models lists no model"
  ok "$2: GET /api/v1/models -> $(printf '%s' "$models" | "$PY" -c 'import json,sys; print(", ".join(m["id"] for m in json.load(sys.stdin)["models"]))')"
  code="$(curl -sS -o "$TMP/attention.json" -w '%{http_code}' --max-time 20 -H 'Content-Type: application/json' \
    -d "{\"model\": \"$MODEL\", \"text\": \"$CHECK_TEXT\"}" "$1/api/v1/attention")"
  [[ $code == 200 ]] || { head -c 400 "$TMP/attention.json"; echo; fail "$2: POST /api/v1/attention -> $code"; }
  ok "$2: POST /api/v1/attention {model: $MODEL, text: '$CHECK_TEXT'} -> 200 ($(wc -c <"$TMP/attention.json") bytes)"
}

log "container: run $IMAGE, published on 127.0.0.1:$P_CTR"
"$PODMAN" run -d --name "$CTR" --runtime "$RUNTIME" "${LIMITS[@]}" \
  --read-only --tmpfs /tmp --cap-drop ALL --security-opt no-new-privileges \
  -e WEB_CONCURRENCY=2 -e ATTNVIZ_CACHE_SIZE="${BENCH_CACHE_SIZE:-0}" -e ATTNVIZ_HEADER_TIMEOUT_S=3 \
  -p "127.0.0.1:$P_CTR:8000" "$IMAGE" >/dev/null 2>"$TMP/podman-run.log" \
  || fail "podman run: $(cat "$TMP/podman-run.log")"
c0=$SECONDS
wait_ready "http://127.0.0.1:$P_CTR" "container"
ok "ready $((SECONDS - c0)) s after start; $("$PODMAN" logs "$CTR" 2>&1 | grep -m1 'attnviz:' || true)"
check_api "http://127.0.0.1:$P_CTR" "container"
"$PODMAN" healthcheck run "$CTR" >/dev/null 2>&1 || fail "container: HEALTHCHECK fails"
ok "container: podman healthcheck run -> healthy"
head="$(curl -fsSI --max-time 5 "http://127.0.0.1:$P_CTR/healthz" | tr -d '\r')" || fail "container: HEAD /healthz"
grep -qi '^permissions-policy:' <<<"$head" || fail "container: no Permissions-Policy header"
! grep -qi '^server:' <<<"$head" || fail "container: sends a server header"
ok "container: HEAD /healthz 200, Permissions-Policy, no server header"
code="$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 -H 'Content-Type: application/json' \
  -d "{\"model\": \"nope\", \"model\": \"$MODEL\", \"text\": \"hi\"}" "http://127.0.0.1:$P_CTR/api/v1/tokenize")"
[[ $code == 422 ]] || fail "container: a repeated JSON key -> $code, not 422"
ok "container: a repeated JSON key -> 422"
took="$(idle_closed "$P_CTR" 3)" || fail "container: an idle connection was still open after 3 s (ATTNVIZ_HEADER_TIMEOUT_S=3)"
ok "container: an idle connection is closed after ${took} s (ATTNVIZ_HEADER_TIMEOUT_S=3)"

log "container without any network (--network none): serves from the baked-in checkpoints"
# shellcheck disable=SC2016  # expanded inside the container
"$PODMAN" run --rm --name "$CTR-offline" --runtime "$RUNTIME" "${LIMITS[@]}" --network none --read-only --tmpfs /tmp \
  -e CHECK_TEXT="$CHECK_TEXT" --entrypoint bash "$IMAGE" -c '
    attnviz-entrypoint >/tmp/server.log 2>&1 &
    for i in $(seq 120); do attnviz-entrypoint healthcheck 2>/dev/null && break; sleep 0.5; done
    python - <<PY
import json, urllib.request
base = "http://127.0.0.1:8000"
for _ in range(120):
    try:
        urllib.request.urlopen(base + "/readyz", timeout=2); break
    except Exception:
        import time; time.sleep(0.5)
m = json.load(urllib.request.urlopen(base + "/api/v1/models"))["models"]
req = urllib.request.Request(base + "/api/v1/attention", method="POST",
    data=json.dumps({"model": m[0]["id"], "text": "$CHECK_TEXT"}).encode(),
    headers={"Content-Type": "application/json"})
print("offline:", len(m), "models, attention", urllib.request.urlopen(req).status)
PY' >"$TMP/offline.log" 2>&1 || { cat "$TMP/offline.log"; fail "offline container"; }
ok "$(grep offline: "$TMP/offline.log")"

# ---------------------------------------------------------------------------------------
CPUS="$(nproc)"
# Same thread split as deploy/entrypoint.sh: cores / (processes x the app's inference threads).
start_uvicorn() { # $1 = port, $2 = workers, $3 = log name, $4 = processes sharing the CPUs
  local threads=$((CPUS / (${4:-$2} * ${ATTNVIZ_MAX_CONCURRENCY:-2}))); ((threads >= 1)) || threads=1
  ATTNVIZ_TORCH_THREADS=$threads OMP_NUM_THREADS=$threads ATTNVIZ_DEVICE=cpu \
    ATTNVIZ_CACHE_SIZE="${BENCH_CACHE_SIZE:-0}" \
    "$PY" -m app.server --host 127.0.0.1 --port "$1" --workers "$2" \
    --log-level warning >"$TMP/$3.log" 2>&1 &
  PIDS+=($!)
}

log "host: 2 uvicorn replicas (1 worker each) behind nginx on 127.0.0.1:$P_LB"
start_uvicorn "$P_A" 1 replica-a 2
start_uvicorn "$P_B" 1 replica-b 2
wait_ready "http://127.0.0.1:$P_A" "replica A"
wait_ready "http://127.0.0.1:$P_B" "replica B"
mkdir -p "$TMP/nginx/logs"
cat >"$TMP/nginx/nginx.conf" <<EOF
# generated by deploy/image-test.sh (same upstream settings as deploy/nginx.conf, and its
# slow-client lines as they are)
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log $TMP/nginx/logs/access.log;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    keepalive_requests 100000;
$(sed -n '/slow and idle clients: begin/,/slow and idle clients: end/p' deploy/nginx.conf)
    upstream attnviz {
        least_conn;
        server 127.0.0.1:$P_A;
        server 127.0.0.1:$P_B;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$P_LB;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host \$host;
        add_header X-Upstream \$upstream_addr always;
        location /api/v1/generate/stream {
            proxy_pass http://attnviz;
            proxy_buffering off;
            add_header X-Upstream \$upstream_addr always;
        }
        location / { proxy_pass http://attnviz; }
    }
}
EOF
nginx -t -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" >"$TMP/nginx-t.log" 2>&1 || { cat "$TMP/nginx-t.log"; fail "nginx -t"; }
nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" || fail "nginx start"
NGINX_STARTED=1
LB="http://127.0.0.1:$P_LB"
wait_ready "$LB" "nginx"
check_api "$LB" "nginx"
nginx_idle="$(grep -Eo 'client_header_timeout +[0-9]+' deploy/nginx.conf | grep -Eo '[0-9]+$')"
took="$(idle_closed "$P_LB" "$nginx_idle")" || fail "nginx: an idle connection was still open after ${nginx_idle} s"
ok "nginx: an idle connection is closed after ${took} s (client_header_timeout ${nginx_idle}s)"
for _ in $(seq 20); do
  curl -fsS -o /dev/null -D - --max-time 10 "$LB/api/v1/models" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-upstream"{print $2}'
done | sort | uniq -c >"$TMP/upstreams.txt"
n_up="$(wc -l <"$TMP/upstreams.txt")"
sed 's/^/      /' "$TMP/upstreams.txt"
((n_up >= 2)) || fail "nginx sent all 20 requests to $n_up upstream"
ok "20 requests through nginx reached $n_up distinct upstreams"
GEN_MODEL="$(curl -fsS "$LB/api/v1/models" | "$PY" -c 'import json,sys; ms=json.load(sys.stdin)["models"]; print(next((m["id"] for k in ("seq2seq", "decoder") for m in ms if m["kind"] == k), ""))')"
if [[ -n $GEN_MODEL ]]; then
  curl -fsS -N --max-time 60 -G "$LB/api/v1/generate/stream" --data-urlencode "model=$GEN_MODEL" \
    --data-urlencode "text=$CHECK_TEXT" -d max_new_tokens=8 >"$TMP/sse.txt" || fail "SSE through nginx"
  n_steps="$(grep -c '^event: step' "$TMP/sse.txt" || true)"
  grep -q '^event: done' "$TMP/sse.txt" || fail "SSE through nginx: no done event"
  ok "nginx: GET /api/v1/generate/stream ($GEN_MODEL) -> $n_steps step events, then done (unbuffered location)"
fi

# ---------------------------------------------------------------------------------------
if [[ "${SKIP_LOAD:-0}" == 1 ]]; then log "load tests skipped (SKIP_LOAD=1)"; exit 0; fi

log "load: hey, ${LOAD_SECONDS} s each, ${LOAD_CONNS} connections, 127.0.0.1 only (CPU: $CPUS cores, shared with hey; ATTNVIZ_CACHE_SIZE=${BENCH_CACHE_SIZE:-0})"
start_uvicorn "$P_ONE" 1 bench-1worker
start_uvicorn "$P_TWO" 2 bench-2workers
wait_ready "http://127.0.0.1:$P_ONE" "1-worker server"
wait_ready "http://127.0.0.1:$P_TWO" "2-worker server"
printf '{"model": "%s", "text": "%s"}' "$MODEL" "$LOAD_TEXT" >"$TMP/body.json"

RESULTS="$TMP/results.txt"
# attention-distinct: every request a different sentence of the lecture grammar
# ("the small dog saw the red apple"), so neither the app's result cache nor its
# coalescing of identical in-flight requests applies: each request runs the model.
cat >"$TMP/distinct.lua" <<EOF
local adjs  = {"black", "white", "red", "green", "small", "big", "young", "happy"}
local nouns = {"cat", "dog", "mouse", "bear", "man", "woman", "bird", "fish", "girl", "boy",
               "honey", "cheese", "apple", "house", "car", "book"}
local verbs = {"ate", "saw", "liked", "found", "bites", "sees"}
local counter = 0
function setup(thread) thread:set("tid", counter); counter = counter + 1 end
function init(args) n = 0 end
function request()
  n = n + 1
  local i = n * 4 + tid
  local text = string.format("the %s %s %s the %s %s", adjs[i % 8 + 1], nouns[math.floor(i / 8) % 16 + 1],
    verbs[math.floor(i / 128) % 6 + 1], adjs[math.floor(i / 768) % 8 + 1], nouns[math.floor(i / 3) % 16 + 1])
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"},
    string.format('{"model": "$MODEL", "text": "%s"}', text))
end
EOF
to_ms() { # wrk's "12.34ms" / "850.00us" / "1.02s" -> ms
  awk -v v="$1" 'BEGIN { u = v; sub(/^[0-9.]+/, "", u); x = v + 0;
    if (u == "us") x /= 1000; else if (u == "s") x *= 1000; else if (u == "m") x *= 60000;
    printf "%.1f", x }'
}
bench() { # $1 = label, $2 = base url
  local what out rps p50 p99 n200 total errs non2xx
  for what in models attention attention-distinct; do
    # cool-down between runs: the load generator itself shares the 2 cores
    sleep 1
    case $what in
      models)    out="$(hey -z "${LOAD_SECONDS}s" -c "$LOAD_CONNS" "$2/api/v1/models")" ;;
      attention) out="$(hey -z "${LOAD_SECONDS}s" -c "$LOAD_CONNS" -m POST -T application/json \
                          -D "$TMP/body.json" "$2/api/v1/attention")" ;;
      attention-distinct)
        out="$(wrk -t 2 -c "$LOAD_CONNS" -d "${LOAD_SECONDS}s" --latency -s "$TMP/distinct.lua" "$2/api/v1/attention")" ;;
    esac
    rps="$(awk '/Requests\/sec:/{printf "%.0f", $2}' <<<"$out")"
    if [[ $what == attention-distinct ]]; then
      p50="$(to_ms "$(awk '$1 == "50%" {print $2}' <<<"$out")")"
      p99="$(to_ms "$(awk '$1 == "99%" {print $2}' <<<"$out")")"
      total="$(awk '/requests in/{print $1}' <<<"$out")"
      non2xx="$(awk '/Non-2xx/{print $NF}' <<<"$out")"
      n200=$(( ${total:-0} - ${non2xx:-0} ))
      errs="$(awk '/Socket errors:/{gsub(/,/, ""); print $4 + $6 + $8 + $10}' <<<"$out")"
    else
      p50="$(awk '/ 50% in /{printf "%.1f", $3*1000}' <<<"$out")"
      p99="$(awk '/ 99% in /{printf "%.1f", $3*1000}' <<<"$out")"
      n200="$(awk '/\[200\]/{print $2}' <<<"$out")"
      total="$(awk '/\[[0-9]+\]/{s+=$2} END{print s+0}' <<<"$out")"
      errs="$(awk '/Error distribution:/{f=1; next} f && /^ *\[[0-9]+\]/{gsub(/[][]/, "", $1); s+=$1} END{print s+0}' <<<"$out")"
    fi
    printf '%-34s %-19s %6s req/s   p50 %6s ms   p99 %6s ms   200: %s/%s  errors: %s\n' \
      "$1" "$what" "${rps:-?}" "${p50:-?}" "${p99:-?}" "${n200:-0}" "${total:-0}" "${errs:-0}" | tee -a "$RESULTS"
  done
}
bench "1 uvicorn worker"                  "http://127.0.0.1:$P_ONE"
bench "2 uvicorn workers (--workers 2)"   "http://127.0.0.1:$P_TWO"
bench "2 replicas behind nginx"           "$LB"
bench "container (WEB_CONCURRENCY=2)"     "http://127.0.0.1:$P_CTR"

log "summary: models = GET /api/v1/models (hey); attention = POST /api/v1/attention '$LOAD_TEXT' on $MODEL, the same body each time (hey); attention-distinct = a different sentence each request (wrk)"
cat "$RESULTS"
[[ -n ${BUILD_S:-} ]] && echo "build: ${BUILD_S} s; image: $((SIZE / 1000000)) MB"
