#!/usr/bin/env bash
# bench-cluster.sh: one hub (embedded storage) next to three hubs on NATS
# JetStream (3 nodes, R3), PostgreSQL and VictoriaMetrics (issue #15):
#   - acked samples/s and agent → browser latency (loadgen --watch) for the
#     same loadgen workload; in the cluster, loadgen's agents are spread over
#     the three hubs and the watcher reads a hub most of them do not stream
#     to, so the latency includes the trip through NATS;
#   - JetStream's cost: nats-server RSS and CPU seconds, stream bytes;
#     PostgreSQL's: RSS, CPU seconds, transactions, database size;
#   - the failover time distribution over KILLS hub SIGKILLs
#     (e2e TestClusterFailoverTimeDistribution).
#
#   MACHINES=1000 SERIES=100 DURATION=60s KILLS=20 scripts/bench-cluster.sh
#
# MODES (default "single cluster failover") picks the parts. Needs
# nats-server, victoria-metrics, PostgreSQL's initdb/pg_ctl (run as user
# postgres when root), curl and jq. Everything runs on loopback on free
# ports, in $WORK (default a new temp dir), and is stopped at exit. Prints
# one line per run; say next to the figures how loaded the machine was
# (load1 is printed).
set -euo pipefail
MACHINES=${MACHINES:-1000}
SERIES=${SERIES:-100}
DURATION=${DURATION:-60s}
KILLS=${KILLS:-20}
MODES=${MODES:-single cluster failover}
WORK=${WORK:-$(mktemp -d /tmp/bench-cluster.XXXXXX)}
BIN=$WORK/sysmonstm
PGBIN=${PGBIN:-$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | tail -n 1)")}

cd "$(dirname "$0")/.."
go build -o "$BIN" ./cmd/sysmonstm
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [[ -f $WORK/pg/data/postmaster.pid ]] && as_pg "$PGBIN/pg_ctl" stop -D "$WORK/pg/data" -m immediate >/dev/null 2>&1 || true
}
trap cleanup EXIT

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
as_pg() { if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi; }
cpu_s() { # cpu_s PID…: user+system CPU seconds of the processes
  local t=0 p
  for p in "$@"; do
    [[ -r /proc/$p/stat ]] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  awk -v t="$t" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", t / hz}'
}
rss_mib() { # rss_mib PID…: resident MiB summed
  local k=0 p
  for p in "$@"; do
    [[ -r /proc/$p/status ]] && k=$((k + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status")))
  done
  awk -v k="$k" 'BEGIN {printf "%.0f", k / 1024}'
}
wait_http() { # wait_http URL [PID LOG]: until URL answers 2xx; fails if PID ends first or after 60 s
  local t0=$SECONDS
  until curl -fsS "$1" >/dev/null 2>&1; do
    if { [[ -n ${2:-} ]] && ! kill -0 "$2" 2>/dev/null; } || ((SECONDS - t0 > 60)); then
      echo "bench-cluster: $1 never answered${3:+; end of $3:}" >&2
      [[ -n ${3:-} ]] && tail -n 5 "$3" >&2
      exit 1
    fi
    sleep 0.2
  done
}
summary() { grep "^{" "$1" | tail -n 1; }

start_hub() { # start_hub NAME EXTRA…: sets hub_http, hub_grpc, hub_pid
  local name=$1
  shift
  hub_http=127.0.0.1:$(freeport)
  hub_grpc=127.0.0.1:$(freeport)
  "$BIN" hub --data-dir "$WORK/$name" --listen-http "$hub_http" --listen-grpc "$hub_grpc" --log-level warn \
    --max-machines-per-token "$MACHINES" "$@" >"$WORK/$name.log" 2>&1 &
  hub_pid=$!
  pids+=("$hub_pid")
  wait_http "http://$hub_http/ready" "$hub_pid" "$WORK/$name.log"
}

loadgen() { # loadgen NAME HUBS WATCH_HTTP TOKEN
  "$BIN" loadgen --hub "$2" --token "$4" --machines "$MACHINES" --series "$SERIES" --interval 1s \
    --duration "$DURATION" --watch "ws://$3/ws" --log-level warn >"$WORK/$1.loadgen" 2>&1 || true
  summary "$WORK/$1.loadgen"
}

report() { # report MODE SUMMARY EXTRA
  local s=$2
  echo "mode=$1 machines=$MACHINES series=$SERIES samples_per_second=$(jq -r '.samples_per_second | floor' <<<"$s")" \
    "errors=$(jq -r .errors <<<"$s") live_p50_ms=$(jq -r '.live_latency.p50_ms // "?"' <<<"$s")" \
    "live_p99_ms=$(jq -r '.live_latency.p99_ms // "?"' <<<"$s") live_events=$(jq -r '.live_latency.events // 0' <<<"$s") $3 load1=$(cut -d' ' -f1 /proc/loadavg)"
}

single() {
  local tok
  tok=$("$BIN" token create --data-dir "$WORK/single" --name loadgen)
  start_hub single
  local hub=$hub_pid c0 s
  c0=$(cpu_s "$hub")
  s=$(loadgen single "$hub_grpc" "$hub_http" "$tok")
  report single "$s" "hub_cpu_s=$(awk -v a="$(cpu_s "$hub")" -v b="$c0" 'BEGIN {printf "%.1f", a - b}') hub_rss_mib=$(rss_mib "$hub")"
  kill "$hub"
}

cluster() {
  # NATS: three nodes with JetStream, routed to each other.
  local routes="" n conf
  declare -A client cport mon
  for n in 1 2 3; do
    client[$n]=127.0.0.1:$(freeport)
    cport[$n]=$(freeport)
    mon[$n]=127.0.0.1:$(freeport)
    routes+="nats-route://127.0.0.1:${cport[$n]} "
  done
  local natspids=() urls=()
  for n in 1 2 3; do
    conf=$WORK/nats-$n.conf
    printf 'server_name: n%s\nlisten: %s\nhttp: %s\nmax_payload: 8MB\njetstream { store_dir: "%s" }\ncluster { name: bench, listen: 127.0.0.1:%s, routes: [%s] }\n' \
      "$n" "${client[$n]}" "${mon[$n]}" "$WORK/nats-$n" "${cport[$n]}" "${routes// /, }" | sed 's/, ]/]/' >"$conf"
    nats-server -c "$conf" >"$WORK/nats-$n.log" 2>&1 &
    pids+=("$!")
    natspids+=("$!")
    urls+=("nats://${client[$n]}")
  done
  for n in 1 2 3; do
    until [[ $(curl -fsS "http://${mon[$n]}/jsz" 2>/dev/null | jq -r '.meta_cluster.leader // ""') != "" ]]; do sleep 0.2; done
  done
  # PostgreSQL of its own.
  local pgport
  pgport=$(freeport)
  mkdir -p "$WORK/pg"
  ((EUID == 0)) && chown postgres: "$WORK/pg" && chmod a+x "$WORK"
  as_pg "$PGBIN/initdb" -D "$WORK/pg/data" -U postgres --auth=trust --no-sync >/dev/null
  as_pg "$PGBIN/pg_ctl" start -D "$WORK/pg/data" -w -l "$WORK/pg/log" \
    -o "-p $pgport -k $WORK/pg -c listen_addresses=127.0.0.1" >/dev/null
  local pgurl="postgres://postgres@127.0.0.1:$pgport/postgres?sslmode=disable"
  # VictoriaMetrics, deduplicating.
  local vm
  vm=127.0.0.1:$(freeport)
  victoria-metrics -storageDataPath "$WORK/vm" -httpListenAddr "$vm" -retentionPeriod 100y -loggerLevel WARN \
    -dedup.minScrapeInterval=1ms >"$WORK/vm.log" 2>&1 &
  local vmpid=$!
  pids+=("$vmpid")
  wait_http "http://$vm/health" "$vmpid" "$WORK/vm.log"
  # Three hubs.
  local nats
  nats=$(IFS=,; echo "${urls[*]}")
  local tok
  tok=$(SYSMONSTM_POSTGRES=$pgurl "$BIN" token create --name loadgen)
  local hubs=() grpcs=() hubpids=()
  for n in a b c; do
    SYSMONSTM_POSTGRES=$pgurl start_hub "cluster-$n" --nats "$nats" --nats-replicas 3 \
      --remote-write "http://$vm/api/v1/write" --history-url "http://$vm" --alerts-leader-election
    hubs+=("$hub_http")
    grpcs+=("$hub_grpc")
    hubpids+=("$hub_pid")
  done
  local pgpids
  read -r -a pgpids < <(pgrep -d ' ' -P "$(head -n 1 "$WORK/pg/data/postmaster.pid")"; head -n 1 "$WORK/pg/data/postmaster.pid")
  local xact0 c_nats c_pg c_hubs c_vm
  xact0=$(psql -At "$pgurl" -c "select xact_commit from pg_stat_database where datname = 'postgres'")
  c_nats=$(cpu_s "${natspids[@]}")
  c_pg=$(cpu_s "${pgpids[@]}")
  c_hubs=$(cpu_s "${hubpids[@]}")
  c_vm=$(cpu_s "$vmpid")
  local s
  # The watcher reads hub b: loadgen's agents spread over a, b and c, so
  # two thirds of the events it measures crossed NATS from another hub.
  s=$(loadgen cluster "$(IFS=,; echo "${grpcs[*]}")" "${hubs[1]}" "$tok")
  read -r -a pgpids < <(pgrep -d ' ' -P "$(head -n 1 "$WORK/pg/data/postmaster.pid")"; head -n 1 "$WORK/pg/data/postmaster.pid")
  local stream_bytes
  stream_bytes=$(curl -fsS "http://${mon[1]}/jsz?streams=true" | jq '[.account_details[]?.stream_detail[]?.state.bytes] | add // 0')
  report cluster "$s" "$(
    printf 'hubs_cpu_s=%s hubs_rss_mib=%s ' "$(awk -v a="$(cpu_s "${hubpids[@]}")" -v b="$c_hubs" 'BEGIN {printf "%.1f", a - b}')" "$(rss_mib "${hubpids[@]}")"
    printf 'nats_cpu_s=%s nats_rss_mib=%s stream_bytes=%s ' "$(awk -v a="$(cpu_s "${natspids[@]}")" -v b="$c_nats" 'BEGIN {printf "%.1f", a - b}')" "$(rss_mib "${natspids[@]}")" "$stream_bytes"
    printf 'pg_cpu_s=%s pg_rss_mib=%s pg_xacts=%s pg_db_bytes=%s ' "$(awk -v a="$(cpu_s "${pgpids[@]}")" -v b="$c_pg" 'BEGIN {printf "%.1f", a - b}')" "$(rss_mib "${pgpids[@]}")" \
      "$(($(psql -At "$pgurl" -c "select xact_commit from pg_stat_database where datname = 'postgres'") - xact0))" \
      "$(psql -At "$pgurl" -c "select pg_database_size('postgres')")"
    printf 'vm_cpu_s=%s vm_rss_mib=%s' "$(awk -v a="$(cpu_s "$vmpid")" -v b="$c_vm" 'BEGIN {printf "%.1f", a - b}')" "$(rss_mib "$vmpid")"
  )"
}

failover() {
  SYSMONSTM_FAILOVER_KILLS=$KILLS go test -count=1 -timeout 30m -run 'TestClusterFailoverTimeDistribution$' -v ./e2e/ \
    >"$WORK/failover.log" 2>&1 || { tail -n 40 "$WORK/failover.log"; return 1; }
  echo "mode=failover kills=$KILLS $(grep -o 'cluster failover.*' "$WORK/failover.log") load1=$(cut -d' ' -f1 /proc/loadavg)"
}

for m in $MODES; do "$m"; done
echo "work dir: $WORK"
