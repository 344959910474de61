source "$(dirname "$0")/lib.sh"
OUT=/tmp/cb/b1.jsonl
killall_servers; redis_up
P=""
for i in 1 2 3 4 5; do p=$(node n$i 4670 -ReusePort 1 -MaxConnections 19600); P="$P,$p"; done
sleep 2
run idle -engine redis -n 95000 -addr 127.0.0.1:4670 -count-at none -pid ${P#,},$REDIS -hold 30s -settle 5s -sources 127.0.9.2-127.0.9.61 -timeout 10m -json
grep -c "too many open files" /tmp/cb/meteord-n*.log >>$LOG
for i in 1 2 3 4 5; do grep -c joinchannel /tmp/cb/meteord-n$i.log; done >>$LOG
redis-cli -p 6390 info memory | grep used_memory_human >>$LOG
killall_servers
echo DONE1 >>$LOG
