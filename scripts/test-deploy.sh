#!/usr/bin/env bash
# Deployment checks: the Helm chart, the container images and the compose quickstart.
# Installs what it needs (Python packages in target/deploy-venv, Helm as a library, base
# images); safe to run again. Exits non-zero on the first failure.
#
#   scripts/test-deploy.sh                  everything
#   STRATA_DEPLOY_SKIP_DOCKER=1 scripts/test-deploy.sh   the chart only
#   STRATA_BIN=path scripts/test-deploy.sh  package and use this binary instead of building
#
# 1. chart     helm lint, then real `helm install` of the default values and helm/strata/ci/*
#              against a stand-in API server; every object validated against the
#              Kubernetes schemas and checked (tests/deploy/chart_test.py); the alert rules
#              checked and unit-tested by promtool (tests/deploy/alerts_test.yaml)
# 2. images    scripts/image.sh (offline: debootstrap base, host-built binary)
# 3. container `strata standalone` in strata:dev, produce/consume from the host, clean stop
# 4. compose   deploy/compose: etcd, S3, controller, 3 brokers, proxy; produce/consume, a
#              broker stopped and the data still there, torn down
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
start=$(date +%s)
step_start=$start
step() {
  local now
  now=$(date +%s)
  printf '\n=== deploy: %s (%ss elapsed)\n' "$*" "$((now - start))" >&2
  step_start=$now
}
log() { printf '[deploy %3ss] %s\n' "$(($(date +%s) - start))" "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
apt_install() {
  log "installing $* from Debian"
  local sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "$@" >/dev/null
}

venv=$root/target/deploy-venv
helm_version=0.1.32
helm_lib=$venv/helm-sdkpy-$helm_version/helm_sdkpy/_lib/linux-amd64/libhelm_sdkpy.so

# --- 1. chart --------------------------------------------------------------------------
step "chart: lint and render with real Helm"
if [ ! -x "$venv/bin/python" ]; then
  log "creating $venv"
  python3 -m venv "$venv"
fi
# Reinstall only when the pinned requirements change.
if ! cmp -s tests/deploy/requirements.txt "$venv/.requirements"; then
  log "installing $(grep -v '^#' tests/deploy/requirements.txt | xargs) into the venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/deploy/requirements.txt
  cp tests/deploy/requirements.txt "$venv/.requirements"
fi
if [ ! -f "$helm_lib" ]; then
  # The wheel carries Helm v4 as a C shared library. It is not installed (its Python
  # wrapper wants 3.12), only unpacked: chart_test.py calls the library with ctypes.
  log "fetching helm-sdkpy $helm_version from PyPI for its Helm library"
  rm -rf "$venv/wheels" "$venv/helm-sdkpy-$helm_version"
  "$venv/bin/pip" download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.12 --dest "$venv/wheels" "helm-sdkpy==$helm_version"
  "$venv/bin/python" -m zipfile -e "$venv"/wheels/helm_sdkpy-"$helm_version"-*.whl "$venv/helm-sdkpy-$helm_version"
  rm -rf "$venv/wheels"
  [ -f "$helm_lib" ] || die "the helm-sdkpy wheel has no $helm_lib"
fi
rendered=$root/target/deploy-rendered
rm -rf "$rendered"
"$venv/bin/python" tests/deploy/chart_test.py --helm-lib "$helm_lib" --dump-config "$rendered" ||
  die "chart checks"

step "alerts: promtool checks and unit-tests helm/strata/rules"
promtool=$(command -v promtool || echo "$root/target/promtool/usr/bin/promtool")
if [ ! -x "$promtool" ]; then
  # Only the binary, unpacked: installing Debian's prometheus package would also set up a
  # Prometheus server as a service.
  log "fetching promtool from Debian's prometheus package"
  debs=$(mktemp -d)
  (cd "$debs" && apt-get download prometheus >/dev/null 2>&1) ||
    { apt-get update -qq && (cd "$debs" && apt-get download prometheus >/dev/null 2>&1); } ||
    die "cannot download Debian's prometheus package for promtool"
  dpkg-deb -x "$debs"/prometheus_*.deb "$root/target/promtool"
  rm -rf "$debs"
  [ -x "$promtool" ] || die "Debian's prometheus package has no promtool"
fi
"$promtool" check rules helm/strata/rules/strata-alerts.yaml || die "promtool check rules"
"$promtool" test rules tests/deploy/alerts_test.yaml || die "promtool test rules"
python3 scripts/dashboards.py --check --rules "$root/target/dashboard-queries.yaml" ||
  die "helm/strata/dashboards/ is not what scripts/dashboards.py writes"
"$promtool" check rules "$root/target/dashboard-queries.yaml" >/dev/null ||
  die "a dashboard query does not parse (promtool check rules target/dashboard-queries.yaml)"
log "alert rules and dashboard queries checked by $("$promtool" --version 2>&1 | head -n 1)"

if [ "${STRATA_DEPLOY_SKIP_DOCKER:-0}" = 1 ]; then
  log "STRATA_DEPLOY_SKIP_DOCKER=1: skipping images, container and compose checks"
  exit 0
fi

# --- 2. images -------------------------------------------------------------------------
step "images: scripts/image.sh"
command -v docker >/dev/null || die "docker is not installed (STRATA_DEPLOY_SKIP_DOCKER=1 checks only the chart)"
scripts/image.sh
bin=${STRATA_BIN:-$root/target/release/strata}
[ -x "$bin" ] || die "no strata binary at $bin"
# Binaries from before the proxy's HTTP endpoint get the checks that do not need it.
proxy_http=false
! "$bin" standalone --help 2>/dev/null | grep -q -- --proxy-http-addr || proxy_http=true
uid=$(docker run --rm --entrypoint id strata:dev -u)
[ "$uid" = 10001 ] || die "strata:dev runs as uid $uid, expected the non-root 10001"
log "strata:dev runs as uid $uid; $(docker image inspect --format '{{.Size}}' strata:dev | awk '{printf "%.0f MB", $1/1e6}')"
for tool in etcd s3s-fs strata; do
  docker run --rm --entrypoint "$tool" strata-test:dev --version >/dev/null 2>&1 ||
    docker run --rm --entrypoint "$tool" strata-test:dev --help >/dev/null 2>&1 ||
    die "strata-test:dev cannot run $tool"
done
log "strata-test:dev runs etcd, s3s-fs and strata"

step "chart config: the binary reads every strata.toml the chart rendered"
# The binary itself must accept every strata.toml the chart rendered (it refuses unknown
# settings). The metadata store is pointed at a closed loopback port, so each role stops
# right after reading its configuration instead of looking up cluster DNS names.
checked=0
for file in "$rendered"/*.toml; do
  checked=$((checked + 1))
  for role in controller broker proxy; do
    out=$(STRATA_META=etcd://127.0.0.1:9 RUST_BACKTRACE=0 timeout 20 "$bin" "$role" --config "$file" 2>&1 || true)
    if grep -q "config file" <<<"$out"; then
      printf '%s\n' "$out" | head -n 12 >&2
      die "strata $role refuses the chart's $(basename "$file")"
    fi
  done
done
[ "$checked" -ge 3 ] || die "expected a rendered strata.toml per chart scenario in $rendered, found $checked"
log "strata controller, broker and proxy accept the chart's $checked rendered strata.toml files"

# --- helpers for the container checks --------------------------------------------------
standalone=strata-deploy-test-standalone
project=strata-deploy-test
compose_file=$root/deploy/compose/docker-compose.yml
if docker compose version >/dev/null 2>&1; then
  compose_cmd=(docker compose)
elif command -v docker-compose >/dev/null; then
  compose_cmd=(docker-compose)
else
  apt_install docker-compose
  compose_cmd=(docker-compose)
fi
compose() { "${compose_cmd[@]}" --project-name "$project" --file "$compose_file" "$@"; }
command -v curl >/dev/null || apt_install curl
command -v kcat >/dev/null || apt_install kcat

failed_step=""
cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ] && [ -n "$failed_step" ]; then
    log "logs of the failed step ($failed_step):"
    case $failed_step in
      container) docker logs --tail 40 "$standalone" 2>&1 | sed 's/^/  /' >&2 || true ;;
      compose) compose logs --no-color --tail 25 2>&1 | sed 's/^/  /' >&2 || true ;;
    esac
  fi
  docker rm -f "$standalone" >/dev/null 2>&1 || true
  compose down --volumes --remove-orphans --timeout 30 >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
tmp=$(mktemp -d)
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_for SECONDS WHAT COMMAND...: polls twice a second, bounded.
wait_for() {
  local limit=$1 what=$2
  shift 2
  local deadline=$(($(date +%s) + limit))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || die "$what: not within ${limit}s"
    sleep 0.5
  done
}

http_ok() { curl -fsS --max-time 2 "$1" >/dev/null; }

# produce TOPIC PROXY FIRST LAST / consume_all TOPIC PROXY COUNT: the CLI as a user runs it,
# with its stderr shown only when it fails.
produce() {
  seq "$3" "$4" >"$tmp/in"
  timeout 60 "$bin" produce "$1" --server "$2" <"$tmp/in" 2>"$tmp/err" ||
    { cat "$tmp/err" >&2; die "strata produce $1 --server $2 failed"; }
}
consume_all() {
  timeout 60 "$bin" consume "$1" --from-beginning --max-messages "$3" --timeout-ms 20000 \
    --server "$2" >"$tmp/out" 2>"$tmp/err" ||
    { cat "$tmp/err" >&2; die "strata consume $1 --server $2 failed"; }
  sort -n "$tmp/out" >"$tmp/got"
  seq 1 "$3" >"$tmp/want"
  cmp -s "$tmp/want" "$tmp/got" ||
    die "consume $1 through $2: got $(wc -l <"$tmp/got") of the $3 messages produced"
}

# kafka_round_trip ADMIN KAFKA TOPIC: a new topic, 100 messages in and out through kcat, an
# unmodified Kafka client (librdkafka).
kafka_round_trip() {
  "$bin" topic create "$3" --partitions 2 --admin "$1" >/dev/null 2>"$tmp/err" ||
    { cat "$tmp/err" >&2; die "strata topic create $3 --admin $1 failed"; }
  timeout 60 kcat -b "$2" -L -t "$3" >"$tmp/kcat-meta" 2>&1 ||
    { cat "$tmp/kcat-meta" >&2; die "kcat -L against $2 failed"; }
  grep -q "broker .* at $2" "$tmp/kcat-meta" ||
    { cat "$tmp/kcat-meta" >&2; die "Metadata from $2 does not advertise $2"; }
  seq 1 100 | timeout 60 kcat -b "$2" -P -t "$3" 2>"$tmp/err" ||
    { cat "$tmp/err" >&2; die "kcat -P to $2 failed"; }
  timeout 60 kcat -b "$2" -C -t "$3" -o beginning -e -q 2>"$tmp/err" | sort -n >"$tmp/got" || true
  seq 1 100 >"$tmp/want"
  cmp -s "$tmp/want" "$tmp/got" ||
    { cat "$tmp/err" >&2; die "kcat read $(wc -l <"$tmp/got") of the 100 messages it produced through $2"; }
  log "Kafka round trip through $2: kcat produced and read back 100 messages"
}

# round_trip ADMIN PROXY TOPIC: 1000 messages in, the same 1000 out.
round_trip() {
  "$bin" topic create "$3" --partitions 4 --admin "$1" >/dev/null 2>"$tmp/err" ||
    { cat "$tmp/err" >&2; die "strata topic create $3 --admin $1 failed"; }
  produce "$3" "$2" 1 1000
  consume_all "$3" "$2" 1000
  log "round trip through $2: 1000 messages produced and consumed"
}

# --- 3. standalone container -----------------------------------------------------------
step "container: strata standalone in strata:dev"
failed_step=container
docker rm -f "$standalone" >/dev/null 2>&1 || true
# The image's default command serves every port on 0.0.0.0, the proxy's HTTP endpoint
# included; binaries from before that flag get the same command without it.
run_args=()
if ! $proxy_http; then
  run_args=(standalone --proxy-addr 0.0.0.0:7070 --admin-addr 0.0.0.0:7080
    --broker-addr 0.0.0.0:7071 --broker-http-addr 0.0.0.0:7072)
  log "this binary has no --proxy-http-addr: running standalone with explicit addresses"
fi
# Kafka clients dial the address Metadata advertises, so the host port is chosen here and
# advertised as it is.
kafka_port=$(free_port)
docker run -d --name "$standalone" -p 127.0.0.1::7070 -p 127.0.0.1::7080 -p 127.0.0.1::7072 \
  -p 127.0.0.1::7073 -p "127.0.0.1:$kafka_port:9092" \
  -e STRATA_KAFKA_ADVERTISED_ADDR="127.0.0.1:$kafka_port" strata:dev "${run_args[@]}" >/dev/null
port_of() { docker port "$standalone" "$1/tcp" | head -n 1 | sed 's/.*://'; }
admin=127.0.0.1:$(port_of 7080)
proxy=127.0.0.1:$(port_of 7070)
broker_http=127.0.0.1:$(port_of 7072)
wait_for 60 "standalone admin API ready" http_ok "http://$admin/readyz"
wait_for 60 "standalone broker ready" http_ok "http://$broker_http/readyz"
if $proxy_http; then
  wait_for 60 "standalone proxy ready" http_ok "http://127.0.0.1:$(port_of 7073)/readyz"
  log "admin, broker and proxy report ready on /readyz"
fi
round_trip "$admin" "$proxy" t
kafka_round_trip "$admin" "127.0.0.1:$kafka_port" k
stop_start=$(date +%s)
docker stop --time 30 "$standalone" >/dev/null
code=$(docker inspect --format '{{.State.ExitCode}}' "$standalone")
[ "$code" = 0 ] || die "standalone exited with $code on SIGTERM"
log "docker stop: clean exit in $(($(date +%s) - stop_start))s (SIGTERM handled as PID 1)"
docker rm -f "$standalone" >/dev/null
log "step took $(($(date +%s) - step_start))s"

# --- 4. compose cluster ----------------------------------------------------------------
step "compose: etcd, S3, controller, 3 brokers, proxy"
failed_step=compose
compose down --volumes --remove-orphans --timeout 30 >/dev/null 2>&1 || true
STRATA_ADMIN_PORT=$(free_port)
STRATA_PROXY_PORT=$(free_port)
STRATA_PROXY_HTTP_PORT=$(free_port)
STRATA_KAFKA_PORT=$(free_port)
export STRATA_ADMIN_PORT STRATA_PROXY_PORT STRATA_PROXY_HTTP_PORT STRATA_KAFKA_PORT
log "using ${compose_cmd[*]}; admin 127.0.0.1:$STRATA_ADMIN_PORT, proxy 127.0.0.1:$STRATA_PROXY_PORT"
compose up -d 2>&1 | sed 's/^/  /' >&2 || die "compose up failed"
admin=127.0.0.1:$STRATA_ADMIN_PORT
proxy=127.0.0.1:$STRATA_PROXY_PORT
brokers_registered() {
  [ "$(curl -fsS --max-time 2 "http://$admin/v1/brokers" | grep -o '"id":"broker-[0-9]"' | sort -u | wc -l)" -eq "$1" ]
}
wait_for 90 "controller ready" http_ok "http://$admin/readyz"
wait_for 90 "three brokers registered" brokers_registered 3
wait_for 60 "proxy accepting connections" bash -c "exec 3<>/dev/tcp/127.0.0.1/$STRATA_PROXY_PORT"
if $proxy_http; then
  wait_for 60 "proxy ready" http_ok "http://127.0.0.1:$STRATA_PROXY_HTTP_PORT/readyz"
fi
log "cluster up: $(compose ps -q 2>/dev/null | wc -l) containers, 3 brokers registered"
round_trip "$admin" "$proxy" t
kafka_round_trip "$admin" "127.0.0.1:$STRATA_KAFKA_PORT" k

owners=$(curl -fsS "http://$admin/v1/partitions?topic=t" | grep -o '"broker":"broker-[0-9]"' | sort -u | wc -l)
[ "$owners" -eq 3 ] || die "topic t's partitions sit on $owners broker(s), expected all 3"
s3_container=$(compose ps -q s3)
segments=$(docker exec "$s3_container" find /var/lib/strata/s3/strata -name '*.seg' | wc -l)
[ "$segments" -ge 1 ] || die "no segment object reached the S3 server"
log "partitions spread over 3 brokers; $segments segment object(s) in the S3 bucket"

# Brokers hold no data: stop one (it drains on SIGTERM), write more, read everything back.
compose stop --timeout 30 broker-1 >/dev/null 2>&1
wait_for 30 "broker-1 deregistered" brokers_registered 2
produce t "$proxy" 1001 2000
consume_all t "$proxy" 2000
log "broker-1 stopped: its partitions moved, 2000 of 2000 messages readable"
compose start broker-1 >/dev/null 2>&1
wait_for 60 "broker-1 back" brokers_registered 3

compose down --volumes --remove-orphans --timeout 30 >/dev/null 2>&1
left=$(docker ps -aq --filter "label=com.docker.compose.project=$project" | wc -l)
[ "$left" -eq 0 ] || die "$left compose container(s) left after down"
log "torn down; step took $(($(date +%s) - step_start))s"
failed_step=""

step "done: chart, images, container and compose checks passed in $(($(date +%s) - start))s"
