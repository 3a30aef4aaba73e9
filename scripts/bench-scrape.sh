#!/bin/bash
# Whole-process cost of --scrape: an agent without and with a scrape of
# node_exporter (default collectors) every second, next to Prometheus 2.42
# scraping the same node_exporter every second, one after the other in one
# session, 60 s each (docs/benchmarks.md, "Scraping exporters").
# FOOTPRINT: the footprint.py measuring script (CPU % of one core, RSS).
set -e
cd "$(dirname "$0")/.."
B=${B:-/tmp/bench-scrape}
FOOTPRINT=${FOOTPRINT:-../shared/bench/footprint.py}
rm -rf $B/hub $B/prom; mkdir -p $B/hub $B/prom
go build -tags grpcnotrace -o $B/sysmonstm ./cmd/sysmonstm
/usr/bin/prometheus-node-exporter --web.listen-address=127.0.0.1:19188 >/dev/null 2>&1 & NE=$!
export SYSMONSTM_TOKEN=$($B/sysmonstm token create --data-dir $B/hub --machine fp)
$B/sysmonstm hub --data-dir $B/hub --listen-http 127.0.0.1:18010 --listen-grpc 127.0.0.1:15061 --log-level warn --alerts-defaults=false >/dev/null 2>&1 & HUB=$!
sleep 3
cat > $B/prom.yml <<YML
global: {scrape_interval: 1s, scrape_timeout: 900ms}
scrape_configs:
  - job_name: node
    static_configs: [{targets: ["127.0.0.1:19188"]}]
YML
F="python3 $FOOTPRINT --seconds 60"
$F --label agent-no-scrape -- $B/sysmonstm agent --hub 127.0.0.1:15061 --machine-id fp --log-level warn --push-socket ""
$F --label agent-scrape-node-1s -- $B/sysmonstm agent --hub 127.0.0.1:15061 --machine-id fp --log-level warn --push-socket "" --scrape 'http://127.0.0.1:19188/metrics;job=node;interval=1s'
$F --label prometheus-2.42-scrape-node-1s -- /usr/bin/prometheus --config.file=$B/prom.yml --storage.tsdb.path=$B/prom --web.listen-address=127.0.0.1:19099
kill $HUB $NE
