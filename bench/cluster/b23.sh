source "$(dirname "$0")/lib.sh"
OUT=/tmp/cb/b23.jsonl
k=10
for R in 2 5 10 20; do
  # Meteor, two nodes, publishing on A (controller)
  killall_servers; redis_up; A=$(node a 4670); B=$(node b 4673); sleep 1.5; k=$((k+1))
  run fanout -target meteor -engine redis -transport ws -n 10000 -rate $R -size 200 -duration 30s -drain 5s \
    -addr 127.0.0.1:4670,127.0.0.1:4673 -controller 127.0.0.1:4671 -count-at 127.0.0.1:4671 \
    -pid $A,$B,$REDIS -sources 127.0.$k.2-127.0.$k.61 -timeout 5m -json
  # Meteor, two nodes, publishing through A's HTTP API (as Centrifugo is)
  killall_servers; redis_up; A=$(node a 4670); B=$(node b 4673); sleep 1.5; k=$((k+1))
  run fanout -target meteor -engine redis -transport ws -publish http -pub-url http://127.0.0.1:4672 -pub-conns 8 -n 10000 -rate $R -size 200 -duration 30s -drain 5s \
    -addr 127.0.0.1:4670,127.0.0.1:4673 -count-at 127.0.0.1:4671 \
    -pid $A,$B,$REDIS -sources 127.0.$k.2-127.0.$k.61 -timeout 5m -json
  # Meteor, one node, the same load
  killall_servers; redis_up; A=$(node a 4670); sleep 1.5; k=$((k+1))
  run fanout -target meteor -engine redis -transport ws -n 10000 -rate $R -size 200 -duration 30s -drain 5s \
    -addr 127.0.0.1:4670 -controller 127.0.0.1:4671 \
    -pid $A,$REDIS -sources 127.0.$k.2-127.0.$k.61 -timeout 5m -json
  # Centrifugo, two nodes
  killall_servers; redis_up; CA=$(cf 4700); CB=$(cf 4701); sleep 2.5; k=$((k+1))
  run fanout -target centrifugo -engine redis -transport ws -n 10000 -rate $R -size 200 -duration 30s -drain 5s \
    -addr 127.0.0.1:4700,127.0.0.1:4701 -pub-url http://127.0.0.1:4700 -pub-conns 8 \
    -pid $CA,$CB,$REDIS -sources 127.0.$k.2-127.0.$k.61 -timeout 5m -json
  # Nchan, two nodes, Redis mode
  killall_servers; redis_up; NA=$(nchan 4680); NB=$(nchan 4681); sleep 1; k=$((k+1))
  run fanout -target nchan -engine redis -transport ws -publish ws -n 10000 -rate $R -size 200 -duration 30s -drain 5s \
    -addr 127.0.0.1:4680,127.0.0.1:4681 -pub-url http://127.0.0.1:4680 -count-at 127.0.0.1:4680,127.0.0.1:4681 \
    -pid $NA,$NB,$REDIS -sources 127.0.$k.2-127.0.$k.61 -timeout 5m -json
done
killall_servers
echo DONE23 >>$LOG
