#!/bin/bash
# idle 10,000 subscribers: SSE without a token, SSE and WebSocket with one (SubscriberAuth 1)
SECRET=$(openssl rand -hex 32)
b64() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
h=$(printf '{"alg":"HS256","typ":"JWT"}' | b64)
p=$(printf '{"sub":"bench-user-0001","channels":["*"],"exp":%d}' $(( $(date +%s) + 3600 )) | b64)
s=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -hmac "$SECRET" -binary | b64)
TOKEN="$h.$p.$s"
k=20
run() { # run <label> <transport> <auth 0|1>
  k=$((k+1))
  /tmp/meteord -ConfigFileLocation "" -PingInterval.xhrinteractive 0 -HeartbeatInterval 0 -SubscriberAuth $3 -JWTSecret "$SECRET" 2>/tmp/idle-md.log &
  PID=$!
  sleep 1
  tok=""; [ "$3" = 1 ] && tok="-token $TOKEN"
  echo "== $1"
  /tmp/meteor-bench idle -target meteor -transport $2 $tok -n 10000 -pid $PID -hold 10s -settle 3s -timeout 3m -sources 127.0.$k.2-127.0.$k.61 -json 2>&1 | tail -3
  kill -TERM $PID; wait $PID
  grep -c "subscription refused" /tmp/idle-md.log
}
run "sse, no token" sse 0
run "sse, token" sse 1
run "websocket, no token" ws 0
run "websocket, token" ws 1
