#!/usr/bin/env bash
# Runs every HazardWatch check and test on a fresh machine: installs what the
# tests need (Debian packages with apt-get, Go tools with go install), then
# gofmt, go vet, staticcheck, docker-compose config and go test ./... .
# .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$(go env GOPATH)/bin:/usr/sbin:$PATH"
STATICCHECK_VERSION=v0.8.2 # staticcheck 2026.2.2
INFLUXD_VERSION=v1.8.10

step() { printf '\n== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }

step "tools"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
need_apt=()
command -v mosquitto >/dev/null || need_apt+=(mosquitto)
# Debian's docker-compose checks docker-compose.yml without a Docker engine.
command -v docker-compose >/dev/null || need_apt+=(docker-compose)
# Debian's chromium runs the officers' console's browser tests (e2e), with
# a CJK font so that the Chinese labels show in their screenshots.
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need_apt+=(fonts-wqy-microhei)
if ((${#need_apt[@]})); then
  echo "installing Debian packages: ${need_apt[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! command -v staticcheck >/dev/null; then
  echo "installing staticcheck $STATICCHECK_VERSION"
  go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
# InfluxDB 1.8 (v2 write API and Flux) for the InfluxDB storage tests;
# building it takes a minute or two the first time.
if ! command -v influxd >/dev/null; then
  echo "installing influxd $INFLUXD_VERSION (go install; takes a minute or two)"
  GOFLAGS=-mod=mod go install "github.com/influxdata/influxdb/cmd/influxd@$INFLUXD_VERSION"
fi
# Tests that only publish and subscribe use the machine's broker on
# 127.0.0.1:1883; start one if none runs. Tests that stop a broker start
# their own on a free port.
if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
  echo "starting mosquitto on 127.0.0.1:1883"
  printf 'listener 1883 127.0.0.1\nallow_anonymous true\n' > /tmp/hazardwatch-mosquitto.conf
  mosquitto -d -c /tmp/hazardwatch-mosquitto.conf
  for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null && break; sleep 0.1; done
fi
# The alerting journal tests create a database each on the machine's
# PostgreSQL on 127.0.0.1:5432 (internal/testenv.Postgres): start it, after
# installing it if need be, when it does not answer.
if ! pg_isready -q -h 127.0.0.1 2>/dev/null; then
  if [ ! -d /etc/postgresql ]; then
    echo "installing postgresql"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
  fi
  pg_version=$(ls /etc/postgresql | sort -V | tail -1)
  echo "starting PostgreSQL $pg_version on 127.0.0.1:5432"
  $sudo pg_ctlcluster --skip-systemctl-redirect "$pg_version" main start || echo "pg_ctlcluster failed; the PostgreSQL tests will say why"
  for _ in $(seq 100); do pg_isready -q -h 127.0.0.1 && break; sleep 0.1; done
fi
# Where 127.0.0.1 is not trusted (Debian asks for a password), the tests
# log in as a role of their own that may only create databases.
if [ -z "${HAZARDWATCH_TEST_POSTGRES:-}" ] && ! psql -h 127.0.0.1 -U postgres -d postgres -w -Atc 'SELECT 1' >/dev/null 2>&1; then
  echo "creating the PostgreSQL role hazardwatch_test"
  $sudo runuser -u postgres -- psql -q -c "DO \$\$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hazardwatch_test') THEN
      CREATE ROLE hazardwatch_test LOGIN CREATEDB PASSWORD 'hazardwatch_test';
    END IF; END \$\$"
  export HAZARDWATCH_TEST_POSTGRES=postgres://hazardwatch_test:hazardwatch_test@127.0.0.1:5432/postgres
fi
echo "go: $(go version); mosquitto: $(mosquitto -h 2>/dev/null | head -1); $(staticcheck -version); influxd: $(influxd version 2>/dev/null)"
echo "$(chromium --version 2>/dev/null); $(docker-compose version --short 2>/dev/null | sed 's/^/docker-compose /'); $(psql --version); server: $(pg_isready -h 127.0.0.1)"

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

step "go mod tidy -diff"
# go.mod and go.sum are as go mod tidy leaves them.
go mod tidy -diff

step "go vet"
go vet ./...

step "staticcheck"
staticcheck ./...

step "docker-compose config"
# docker-compose.yml parses, its anchors and variables resolve, and every
# service's settings are valid (no engine needed).
docker-compose config -q

step "go test"
# Not under -race here: paho.mqtt.golang itself races when it resumes a
# session with messages in flight (eclipse-paho/paho.mqtt.golang#703), which
# the outage tests do on purpose; `go test -race ./...` is otherwise clean.
go test -count=1 -timeout 20m "$@" ./...

echo "screenshots of the officers' console: ${HAZARDWATCH_ARTIFACTS:-$PWD/test-artifacts}/console/"

step "done"
