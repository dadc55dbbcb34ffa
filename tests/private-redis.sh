# Sourced by tests/run.sh and bench/run.sh: `start_private_redis` starts a throwaway Redis on a free
# loopback port (nothing on disk), stopped when the calling script exits — never one this run did
# not start — and sets PRIVATE_REDIS_URL (no database number: the caller picks one).
start_private_redis() {
    redis_dir="$(mktemp -d "${TMPDIR:-/tmp}/ens-autoscaler-redis.XXXXXX")"
    redis_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$redis_dir" --save '' --appendonly no \
        --daemonize yes --pidfile "$redis_dir/redis.pid" >/dev/null
    trap stop_private_redis EXIT
    for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.05; done
    redis-cli -p "$redis_port" ping >/dev/null
    PRIVATE_REDIS_URL="redis://127.0.0.1:$redis_port"
}

stop_private_redis() {
    redis-cli -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
    rm -rf "$redis_dir"
}
