#!/usr/bin/env bash
# HazardWatch's ingest against Telegraf, side by side, into one InfluxDB 1.8
# from one private Mosquitto with the same payloads (docs/load.md).
#
# Each run gives one consumer a fresh database and a backlog: the consumer
# connects once (persistent session, QoS 1) and stops, hazardwatch-load
# -publish-only queues GATEWAYS × POINTS readings a message at RATE
# messages/s per gateway for DURATION, then the consumer starts again and
# drains it. Measured: readings/s stored (from the first stored reading to
# the last, by influxd's own statistics, then verified with a count of the
# database), CPU seconds per million readings of
# the consumer and of influxd, and the consumer's peak resident memory.
# Runs alternate (HazardWatch first in odd rounds, Telegraf first in even
# ones); the script prints every run, the medians and the ratios.
#
# Telegraf is built from the Go module proxy with only the plugins needed
# (mqtt_consumer, the json_v2 parser, outputs.influxdb_v2; Telegraf's
# custom build tags), in the module cache, outside this repository.
#
#   bash scripts/bench-vs-telegraf.sh             # 3 rounds, 10 × 200 points, 2 M readings a run
#   ROUNDS=5 DURATION=20s bash scripts/bench-vs-telegraf.sh
#   HW_ARGS="-cpuprofile /tmp/hw.prof" ONLY=hazardwatch ROUNDS=1 bash scripts/bench-vs-telegraf.sh
#   TELEGRAF=/path/to/telegraf ...   # reuse a Telegraf built before
#   TELEGRAF_BATCH=10000 ...          # Telegraf's metric_batch_size (5000)
#
# Needs: bash 5, go, mosquitto, influxd 1.8 (go install
# github.com/influxdata/influxdb/cmd/influxd@v1.8.10), curl, python3.
set -euo pipefail
export LC_ALL=C # a decimal point in $EPOCHREALTIME, whatever the locale

ROUNDS=${ROUNDS:-3}
GATEWAYS=${GATEWAYS:-10}
POINTS=${POINTS:-200}
RATE=${RATE:-100}          # messages/s per gateway while queueing the backlog
DURATION=${DURATION:-10s}  # of queueing: 10 × 200 × 100/s × 10 s = 2 M readings
TELEGRAF_VERSION=${TELEGRAF_VERSION:-v1.37.2}
TIMEOUT=${TIMEOUT:-60}     # seconds without progress before a run counts as stuck
TELEGRAF_BATCH=${TELEGRAF_BATCH:-5000}  # Telegraf's metric_batch_size
[[ ${BASH_VERSINFO[0]} -ge 5 ]] || { echo "bench: needs bash 5 or later (\$EPOCHREALTIME)" >&2; exit 1; }
[[ $TIMEOUT =~ ^[0-9]+$ ]] || { echo "bench: TIMEOUT must be whole seconds, not $TIMEOUT" >&2; exit 1; }

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/hazardwatch-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

need() { command -v "$1" >/dev/null || { echo "bench: $1 not found: $2" >&2; exit 1; }; }
need go "install Go"
need mosquitto "apt-get install mosquitto"
need curl "apt-get install curl"
need python3 "apt-get install python3"
INFLUXD=${INFLUXD:-$(command -v influxd || echo "$(go env GOPATH)/bin/influxd")}
[ -x "$INFLUXD" ] || { echo "bench: influxd not found: go install github.com/influxdata/influxdb/cmd/influxd@v1.8.10" >&2; exit 1; }

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
clk=$(getconf CLK_TCK)
cpu_s() { awk -v t="$clk" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$1/stat"; }
hwm_mib() { awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
# stalled SINCE: more than TIMEOUT seconds have passed since SINCE (an
# $EPOCHREALTIME), counted in microseconds without starting a process.
stalled() { (( ${EPOCHREALTIME/./} - ${1/./} > TIMEOUT * 1000000 )); }

echo "bench: building hazardwatch-ingest and hazardwatch-load"
mkdir -p "$work/bin"
(cd "$repo" && go build -o "$work/bin/" ./cmd/hazardwatch-ingest ./cmd/hazardwatch-load)
if [ -n "${TELEGRAF:-}" ]; then
	cp "$TELEGRAF" "$work/bin/telegraf"
else
	echo "bench: building Telegraf $TELEGRAF_VERSION (mqtt_consumer, json_v2, influxdb_v2) from the module proxy"
	tdir=$(cd "$work" && go mod download -json "github.com/influxdata/telegraf@$TELEGRAF_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
	(cd "$tdir" && GOFLAGS=-mod=mod go build -tags "custom,inputs.mqtt_consumer,parsers.json_v2,outputs.influxdb_v2" \
		-ldflags "-X github.com/influxdata/telegraf/internal.Version=${TELEGRAF_VERSION#v}" -o "$work/bin/telegraf" ./cmd/telegraf)
fi
"$work/bin/telegraf" --version

mqtt_port=$(freeport)
cat >"$work/mosquitto.conf" <<EOF
listener $mqtt_port 127.0.0.1
allow_anonymous true
persistence false
# Deep enough for the whole backlog of a run, for both consumers alike.
max_queued_messages 10000000
max_queued_bytes 0
max_inflight_messages 1000
EOF
mosquitto -c "$work/mosquitto.conf" >"$work/mosquitto.log" 2>&1 &
pids+=($!)

influx_port=$(freeport)
mkdir -p "$work/influx"
cat >"$work/influxdb.conf" <<EOF
reporting-disabled = true
bind-address = "127.0.0.1:$(freeport)"
[meta]
  dir = "$work/influx/meta"
[data]
  dir = "$work/influx/data"
  wal-dir = "$work/influx/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:$influx_port"
  flux-enabled = true
  log-enabled = false
[logging]
  level = "warn"
[monitor]
  store-enabled = false
[continuous_queries]
  enabled = false
EOF
"$INFLUXD" -config "$work/influxdb.conf" >"$work/influxd.log" 2>&1 &
influx_pid=$!
pids+=($influx_pid)
influx="http://127.0.0.1:$influx_port"
for _ in $(seq 100); do curl -fs "$influx/ping" >/dev/null && break; sleep 0.2; done
influxql() { curl -fsS --max-time 30 -XPOST "$influx/query" --data-urlencode "db=${2:-}" --data-urlencode "q=$1"; }
count() {
	influxql 'SELECT count("value") FROM "reading"' "$1" |
		python3 -c 'import json,sys; r=json.load(sys.stdin)["results"][0]; print(int(r["series"][0]["values"][0][1]) if "series" in r else 0)'
}
# written DB: the points influxd's shards of DB have taken, from its
# statistics (CSV: writePointsOk is the fifth column from the end). They
# include what is not a reading (HazardWatch records its own metrics in
# the same database), so they measure progress, and count decides. Progress
# is polled with this, not with count: a count over a database of millions
# of readings costs influxd about 0.1 CPU-s, and four a second took a third
# of its CPU from the run being measured. No python here either: four
# interpreters a second took a tenth of a core from the run.
written() {
	curl -fsS --max-time 5 -XPOST "$influx/query" -H 'Accept: application/csv' --data-urlencode "q=SHOW STATS FOR 'shard'" |
		awk -F, -v db="database=$1," 'index($0, db) { n += $(NF-4) } END { print n + 0 }'
}

"$work/bin/hazardwatch-load" -write-site "$work/sites" -site-id bench -gateways "$GATEWAYS" -points "$POINTS" >/dev/null
http_port=$(freeport)

# start_consumer NAME ROUND: starts it; its pid is in cpid.
start_consumer() {
	local name=$1 round=$2 db="bench_$1_$2"
	case $name in
	hazardwatch)
		"$work/bin/hazardwatch-ingest" -sites "$work/sites" -data "$work/hw-$round" -http "127.0.0.1:$http_port" \
			-broker "tcp://127.0.0.1:$mqtt_port" -client-id "bench-hw-$round" \
			-influx-url "$influx" -influx-bucket "$db/autogen" ${HW_ARGS:-} >>"$work/hw-$round.log" 2>&1 &
		;;
	telegraf)
		cat >"$work/telegraf-$round.conf" <<EOF
[agent]
  interval = "10s"
  flush_interval = "1s"
  metric_batch_size = $TELEGRAF_BATCH
  metric_buffer_limit = 1000000
  omit_hostname = true
[[inputs.mqtt_consumer]]
  servers = ["tcp://127.0.0.1:$mqtt_port"]
  topics = ["hazardwatch/v1/+/+/telemetry"]
  topic_tag = ""
  qos = 1
  client_id = "bench-telegraf-$round"
  persistent_session = true
  data_format = "json_v2"
  [[inputs.mqtt_consumer.json_v2]]
    measurement_name = "reading"
    timestamp_path = "ts"
    timestamp_format = "2006-01-02T15:04:05.999Z07:00"
    [[inputs.mqtt_consumer.json_v2.tag]]
      path = "site"
    [[inputs.mqtt_consumer.json_v2.tag]]
      path = "gateway"
    [[inputs.mqtt_consumer.json_v2.object]]
      path = "readings"
      tags = ["point"]
      disable_prepend_keys = true
[[outputs.influxdb_v2]]
  urls = ["$influx"]
  token = ""
  organization = ""
  bucket = "$db/autogen"
EOF
		"$work/bin/telegraf" --config "$work/telegraf-$round.conf" >>"$work/telegraf-$round.log" 2>&1 &
		;;
	esac
	cpid=$!
	pids+=("$cpid")
}

# wait_subscribed NAME PID: returns once the consumer is subscribed.
wait_subscribed() {
	for _ in $(seq 150); do
		case $1 in
		hazardwatch) grep -q '"connected and subscribed"' "$work/hw-$round.log" 2>/dev/null && return ;;
		telegraf) grep -q 'Connected \[' "$work/telegraf-$round.log" 2>/dev/null && return ;;
		esac
		kill -0 "$2" 2>/dev/null || { echo "bench: $1 exited; its log:" >&2; cat "$work"/*"$round".log >&2; exit 1; }
		sleep 0.2
	done
	echo "bench: $1 did not subscribe within 30 s" >&2
	exit 1
}

stop() { kill -TERM "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

results="$work/results"
: >"$results"
run() {
	local name=$1 round=$2 db="bench_$1_$2"
	influxql "CREATE DATABASE $db" >/dev/null
	start_consumer "$name" "$round"
	wait_subscribed "$name" "$cpid"
	stop "$cpid"
	local out
	out=$("$work/bin/hazardwatch-load" -publish-only -broker "tcp://127.0.0.1:$mqtt_port" -site-id bench \
		-gateways "$GATEWAYS" -points "$POINTS" -rate "$RATE" -duration "$DURATION" | grep '^published')
	local want
	want=$(awk '{ print $2 }' <<<"$out")
	local icpu0 wbase
	icpu0=$(cpu_s "$influx_pid")
	# What the consumer's first start wrote (HazardWatch: its metrics),
	# before the backlog is drained.
	wbase=$(written "$db")
	start_consumer "$name" "$round"
	local pid=$cpid t0=$EPOCHREALTIME first="" last="" n=0 n0=0 w=0 est=-1 counted=-1 moved=$EPOCHREALTIME icpu1=""
	# The run starts at the first reading stored: count while the database
	# holds little (cheap then, and HazardWatch's own metrics, written at
	# its start, are not readings), then follow the statistics.
	while [ -z "$first" ]; do
		if n=$(count "$db") && [ "$n" -gt 0 ]; then
			first=$EPOCHREALTIME n0=$n moved=$first
			break
		fi
		if stalled "$moved"; then
			echo "bench: $name round $round stored nothing within ${TIMEOUT}s" >&2
			break
		fi
		sleep 0.1
	done
	while [ -n "$first" ]; do
		local polled=$EPOCHREALTIME
		# est is at least the readings stored: the statistics since the start
		# hold them and whatever else was written (metrics, retries). Only a
		# message's worth of points or more is progress: HazardWatch's
		# metrics alone are a hundred or so every 5 s.
		if w=$(written "$db"); then
			if [ $((w - wbase)) -ne "$est" ]; then
				[ $((w - wbase - est)) -lt "$POINTS" ] || moved=$polled
				est=$((w - wbase))
			fi
		else
			echo "bench: $name round $round: influxd's statistics did not answer; polling on" >&2
		fi
		# Points written twice (a retried request) or metrics count in the
		# statistics too: the count of distinct readings decides, taken
		# again only once the statistics moved.
		if [ "$est" -ge "$want" ] && [ "$est" -ne "$counted" ] && counted=$est && n=$(count "$db") && [ "$n" -ge "$want" ]; then
			last=$polled
			icpu1=$(cpu_s "$influx_pid")
			break
		fi
		if stalled "$moved"; then
			last=$moved
			n=$(count "$db") || n=0
			echo "bench: $name round $round stuck at $n of $want readings" >&2
			break
		fi
		sleep 0.1
	done
	[ -n "$first" ] || first=$t0
	[ -n "$last" ] || last=$EPOCHREALTIME
	[ -n "$icpu1" ] || icpu1=$(cpu_s "$influx_pid")
	local ccpu icpu mem
	ccpu=$(cpu_s "$pid")
	icpu=$(python3 -c "print($icpu1 - $icpu0)")
	mem=$(hwm_mib "$pid")
	stop "$pid"
	python3 - "$name" "$round" "$want" "$n" "$n0" "$first" "$last" "$ccpu" "$icpu" "$mem" "$t0" >>"$results" <<'EOF'
import sys
name, rnd, want, n, n0, first, last, ccpu, icpu, mem, t0 = sys.argv[1:]
want, n, n0 = int(want), int(n), int(n0)
rate = (n - n0) / max(float(last) - float(first), 1e-9)
per_m = lambda s: float(s) / max(n, 1) * 1e6
print(f"{name} {rnd} {n} {want} {rate:.0f} {per_m(ccpu):.2f} {per_m(icpu):.2f} {mem}")
EOF
	tail -1 "$results" | awk '{ printf "  %-11s round %s: %s of %s readings stored, %s readings/s, CPU-s per 1 M readings: consumer %s + influxd %s, peak %s MiB\n", $1, $2, $3, $4, $5, $6, $7, $8 }'
}

echo "bench: $ROUNDS rounds, $GATEWAYS gateways × $POINTS points, backlog of $RATE msg/s per gateway for $DURATION; load average $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq "$ROUNDS"); do
	if [ $((round % 2)) -eq 1 ]; then order="hazardwatch telegraf"; else order="telegraf hazardwatch"; fi
	for name in $order; do
		[ -z "${ONLY:-}" ] || [ "$ONLY" = "$name" ] || continue
		run "$name" "$round"
	done
done

python3 - "$results" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
if {r[0] for r in rows} != {"hazardwatch", "telegraf"}:
    sys.exit(0)  # ONLY one consumer: its runs are printed above
def med(name, col):
    return statistics.median(float(r[col]) for r in rows if r[0] == name)
lost = {n: sum(int(r[3]) - int(r[2]) for r in rows if r[0] == n) for n in ("hazardwatch", "telegraf")}
print()
print("| median | HazardWatch | Telegraf | ratio |")
print("|---|---|---|---|")
def line(what, col, fmt="{:,.0f}"):
    h, t = med("hazardwatch", col), med("telegraf", col)
    print(f"| {what} | {fmt.format(h)} | {fmt.format(t)} | {h / t:.2f} |")
line("readings/s stored in InfluxDB", 4)
line("CPU-s per 1 M readings, consumer", 5, "{:.2f}")
line("CPU-s per 1 M readings, influxd", 6, "{:.2f}")
h = med("hazardwatch", 5) + med("hazardwatch", 6); t = med("telegraf", 5) + med("telegraf", 6)
print(f"| CPU-s per 1 M readings, consumer + influxd | {h:.2f} | {t:.2f} | {h / t:.2f} |")
line("peak memory of the consumer, MiB", 7)
print(f"\nreadings not stored at the end of a run: HazardWatch {lost['hazardwatch']}, Telegraf {lost['telegraf']}")
EOF
