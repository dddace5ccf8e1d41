# Sourced by the measurement scripts that run one `strata standalone` on loopback
# (burst-rss.sh, copies.sh): `start_standalone BIN DIR` starts it on free ports with its data
# in DIR/data and its log in DIR/standalone.log, waits until its proxy listens, and sets
# P (proxy gRPC), PH (proxy HTTP), A (admin), B and BH (broker gRPC and HTTP), K (Kafka) and
# PID. `stop_standalone` stops it with SIGTERM and waits.

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_standalone() {
    local bin=$1 dir=$2
    P=$(free_port); PH=$(free_port); A=$(free_port); B=$(free_port); BH=$(free_port); K=$(free_port)
    "$bin" standalone --data-dir "$dir/data" --proxy-addr "127.0.0.1:$P" \
        --proxy-http-addr "127.0.0.1:$PH" --admin-addr "127.0.0.1:$A" --kafka-addr "127.0.0.1:$K" \
        --broker-addr "127.0.0.1:$B" --broker-http-addr "127.0.0.1:$BH" >"$dir/standalone.log" 2>&1 &
    PID=$!
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$P") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "strata standalone did not listen on 127.0.0.1:$P within 10 s; log: $dir/standalone.log" >&2
    return 1
}

stop_standalone() {
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
}
