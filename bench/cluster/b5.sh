source "$(dirname "$0")/lib.sh"
OUT=/tmp/cb/b5.jsonl
k=60
for tr in sse ws stream; do
  killall_servers; redis_up; A=$(node a 4670); B=$(node b 4673); sleep 1.5; k=$((k+1))
  run resume -engine redis -transport $tr -n 10000 -rate 5 -size 200 -duration 40s -kill-after 10s \
    -addr 127.0.0.1:4670 -resume-addr 127.0.0.1:4673 -controller 127.0.0.1:4674 -count-at 127.0.0.1:4671 \
    -kill-pid $A -resume-jitter 1s -resume-wait 60s -sources 127.0.$k.2-127.0.$k.61 -timeout 5m -json
done
# everyone at once
killall_servers; redis_up; A=$(node a 4670); B=$(node b 4673); sleep 1.5; k=$((k+1))
run resume -engine redis -transport sse -n 10000 -rate 5 -size 200 -duration 40s -kill-after 10s \
  -addr 127.0.0.1:4670 -resume-addr 127.0.0.1:4673 -controller 127.0.0.1:4674 -count-at 127.0.0.1:4671 \
  -kill-pid $A -resume-jitter 0 -resume-wait 60s -sources 127.0.$k.2-127.0.$k.61 -timeout 5m -json
killall_servers
echo DONE5 >>$LOG
