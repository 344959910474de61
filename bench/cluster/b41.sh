source "$(dirname "$0")/lib.sh"
OUT=/tmp/cb/b4.jsonl
killall_servers; redis_up; A=$(node a 4670); sleep 1
run publish -engine redis -publish line -conns 4 -pipeline 64 -duration 10s -controller 127.0.0.1:4671 -pid $A,$REDIS -json
run publish -engine redis -publish line -conns 1 -pipeline 64 -duration 10s -controller 127.0.0.1:4671 -pid $A,$REDIS -json
run publish -engine redis -publish http -batch 100 -conns 4 -duration 10s -pub-url http://127.0.0.1:4672 -pid $A,$REDIS -json
run publish -engine redis -publish http -conns 32 -duration 10s -pub-url http://127.0.0.1:4672 -pid $A,$REDIS -json
killall_servers; redis_up; CA=$(cf 4700); sleep 2
run publish -target centrifugo -engine redis -publish http -conns 32 -duration 10s -pub-url http://127.0.0.1:4700 -pid $CA,$REDIS -json
killall_servers
OUT=/tmp/cb/b1.jsonl
redis_up
P=""
for i in 1 2 3 4 5; do p=$(node n$i 4670 -ReusePort 1); P="$P,$p"; done
sleep 2
run idle -engine redis -n 95000 -addr 127.0.0.1:4670 -count-at none -pid ${P#,},$REDIS -hold 30s -settle 5s -sources 127.0.8.2-127.0.8.61 -timeout 10m -json
grep -c "too many open files" /tmp/cb/meteord-n*.log >>$LOG
for i in 1 2 3 4 5; do grep -c joinchannel /tmp/cb/meteord-n$i.log; done >>$LOG
redis-cli -p 6390 info memory | grep used_memory_human >>$LOG
killall_servers
echo DONE >>$LOG
