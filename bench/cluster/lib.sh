# The cluster benchmarks of BENCHMARKS.md (2026-12-03): helpers. Results go to
# /tmp/cb/*.jsonl, the log to /tmp/cb/run.log. Needs /tmp/meteord, /tmp/meteor-bench,
# centrifugo in ~/go/bin, nginx with libnginx-mod-nchan, redis-server.
mkdir -p /tmp/cb
# helpers for the cluster benchmarks
set -u
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/cb/results.jsonl}
LOG=/tmp/cb/run.log
killall_servers() {
  pkill -f "/tmp/meteord" ; pkill -f "centrifugo -c" ; pkill -f "nginx -p /tmp/nchan" ; pkill -f "redis-server 127.0.0.1:6390"
  sleep 1
}
redis_up() { redis-server --port 6390 --bind 127.0.0.1 --save '' --appendonly no >/tmp/cb/redis.log 2>&1 & REDIS=$!; sleep 0.5; }
node() { # node <name> <first port> [extra...]
  local n=$1 p=$2; shift 2
  /tmp/meteord -ConfigFileLocation "" -Engine redis -RedisURL redis://127.0.0.1:6390/0 -NodeID $n \
    -SubscriberPort $p -ControllerPort $(($p+1)) -AdminPort $(($p+2)) \
    -PingInterval.xhrinteractive 0 -HeartbeatInterval 0 "$@" >/dev/null 2>/tmp/cb/meteord-$n.log &
  echo $!
}
cf() { # cf <port>
  CENTRIFUGO_HTTP_SERVER_PORT=$1 /root/go/bin/centrifugo -c bench/centrifugo/config.json >/dev/null 2>/tmp/cb/cf-$1.log &
  echo $!
}
nchan() { # nchan <port>
  mkdir -p /tmp/nchan-$1/tmp
  sed "s/127.0.0.1:4680/127.0.0.1:$1/" bench/nchan/nginx-redis.conf >/tmp/nchan-$1/nginx.conf
  nginx -p /tmp/nchan-$1/ -c /tmp/nchan-$1/nginx.conf >/dev/null 2>&1 &
  sleep 1
  pgrep -f "nginx -p /tmp/nchan-$1/" | head -1
}
run() { echo "== $(date +%T) $*" >>$LOG; /tmp/meteor-bench "$@" >>$OUT 2>>$LOG; echo "rc=$?" >>$LOG; }
