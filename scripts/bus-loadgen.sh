#!/bin/bash
# Usage: scripts/bus-loadgen.sh embedded|nats MACHINES SERIES INTERVAL DURATION (binary: /tmp/bus-branch, built with
# CGO_ENABLED=0 go build -trimpath -o /tmp/bus-branch ./cmd/sysmonstm; needs nats-server, victoria-metrics, psql on 127.0.0.1:5432)
# loadgen through one hub: embedded (mode=embedded) or NATS+PG+VM (mode=nats)
set -u
mode=$1; machines=$2; series=$3; interval=$4; dur=$5
B=${SYSMONSTM_BIN:-/tmp/bus-branch}
W=$(mktemp -d /tmp/bus-lg.XXXX)
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
GP=$(port)
pids=()
cleanup() { for p in "${pids[@]}"; do kill $p 2>/dev/null; done; sleep 1; rm -rf $W; }
trap cleanup EXIT
args=(hub --data-dir $W/hub --listen-http 127.0.0.1:0 --listen-grpc 127.0.0.1:$GP --max-machines-per-token 100000 --log-level warn)
if [ $mode = nats ]; then
  NP=$(port); VP=$(port)
  nats-server -js -a 127.0.0.1 -p $NP -sd $W/nats > $W/nats.log 2>&1 & pids+=($!)
  victoria-metrics -httpListenAddr 127.0.0.1:$VP -storageDataPath $W/vm -dedup.minScrapeInterval=1ms -loggerLevel WARN > $W/vm.log 2>&1 & pids+=($!)
  DB=sysmonstm_buslg_$$
  psql -q -h 127.0.0.1 -U postgres -c "create database $DB" >/dev/null
  export SYSMONSTM_POSTGRES="postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable"
  args+=(--nats nats://127.0.0.1:$NP --remote-write http://127.0.0.1:$VP/api/v1/write)
  sleep 2
fi
mkdir -p $W/hub
TOK=$($B token create --data-dir $W/hub --name lg 2>/dev/null)
$B "${args[@]}" > $W/hub.log 2>&1 & HP=$!; pids+=($HP)
sleep 3
/usr/bin/time -f "loadgen cpu %U+%S s" $B loadgen --hub 127.0.0.1:$GP --machines $machines --series $series --interval $interval --duration $dur --token $TOK 2>$W/lg.err | tail -1
echo "hub cpu: $(awk '{print ($14+$15)/100 " s"}' /proc/$HP/stat) rss: $(grep VmHWM /proc/$HP/status)"
if [ $mode = nats ]; then
  sleep 3
  curl -s http://127.0.0.1:$VP/internal/force_flush >/dev/null
  sleep 5; curl -s http://127.0.0.1:$VP/internal/force_flush >/dev/null
  echo "vm samples (sysmonstm_agent_seq excluded): $(curl -s "http://127.0.0.1:$VP/api/v1/export" --data-urlencode 'match[]={__name__!="sysmonstm_agent_seq"}' | python3 -c 'import sys,json; print(sum(len(json.loads(l)["timestamps"]) for l in sys.stdin))')"
  echo "nats cpu: $(awk '{print ($14+$15)/100 " s"}' /proc/${pids[0]}/stat) rss: $(grep VmHWM /proc/${pids[0]}/status)"
  grep -i 'error\|warn' $W/hub.log | head -5
  psql -q -h 127.0.0.1 -U postgres -c "drop database $DB" >/dev/null 2>&1 || true
fi
tail -3 $W/lg.err
