#!/usr/bin/env bash
# ref-dockerd.sh start|stop|status — the reference Docker daemon (the oracle).
#
# Runs Debian's dockerd in its own network namespace "berth-ref" (only lo), on
# unix:///run/ref-docker.sock, with its own data and exec roots. Its default
# bridge, veths and iptables rules live inside that namespace, so it never
# touches the host network (and the namespace has no route anywhere). It never pulls: images are
# seeded only with `docker import`. `stop` kills exactly the PID dockerd wrote
# to its pidfile (and the containerd it spawned exits with it).
# Env overrides: REF_DOCKER_SOCK, REF_DOCKER_ROOT, REF_DOCKER_EXEC_ROOT,
# REF_DOCKER_PIDFILE, REF_DOCKER_NETNS, REF_DOCKER_LOG; REF_DOCKER_ARGS adds dockerd flags
# (e.g. --add-runtime berth=/path/to/berth-runtime).
set -euo pipefail

netns=${REF_DOCKER_NETNS:-berth-ref}
sock=${REF_DOCKER_SOCK:-/run/ref-docker.sock}
data_root=${REF_DOCKER_ROOT:-/var/lib/ref-docker}
exec_root=${REF_DOCKER_EXEC_ROOT:-/run/ref-docker}
pidfile=${REF_DOCKER_PIDFILE:-/run/ref-docker.pid}
log=${REF_DOCKER_LOG:-/var/log/ref-dockerd.log}
docker_cli=${DOCKER_CLI:-/usr/local/bin/docker}
[[ -x $docker_cli ]] || docker_cli=docker

running_pid() {
    [[ -s $pidfile ]] || return 1
    local pid
    pid=$(<"$pidfile")
    [[ -d /proc/$pid ]] || return 1
    # Make sure the PID is still a dockerd (not a recycled PID).
    [[ $(cat /proc/"$pid"/comm 2>/dev/null) == dockerd ]] || return 1
    echo "$pid"
}

answers() {
    DOCKER_HOST=unix://$sock "$docker_cli" version --format '{{.Server.Version}}' >/dev/null 2>&1
}

start() {
    if pid=$(running_pid) && answers; then
        echo "ref-dockerd: already running (pid $pid, $sock)"
        return 0
    fi
    command -v dockerd >/dev/null || { echo "ref-dockerd: dockerd not installed (apt-get install docker.io)" >&2; exit 1; }
    if ! ip netns list | grep -qw "^$netns"; then
        ip netns add "$netns"
    fi
    ip netns exec "$netns" ip link set lo up
    mkdir -p "$data_root" "$exec_root" "$(dirname "$log")"
    rm -f "$sock"
    echo "ref-dockerd: starting (netns $netns, sock $sock, log $log)"
    # setsid: the daemon must outlive the calling shell / pytest session.
    setsid nsenter --net=/run/netns/"$netns" dockerd \
        --host "unix://$sock" \
        --data-root "$data_root" \
        --exec-root "$exec_root" \
        --pidfile "$pidfile" \
        --ip6tables=false \
        --storage-driver overlay2 \
        ${REF_DOCKER_ARGS:-} \
        >>"$log" 2>&1 </dev/null &
    local launched=$!
    for _ in $(seq 1 300); do
        if answers; then
            echo "ref-dockerd: up (pid $(running_pid || echo "$launched"))"
            return 0
        fi
        if ! kill -0 "$launched" 2>/dev/null && ! running_pid >/dev/null; then
            echo "ref-dockerd: dockerd exited; last log lines:" >&2
            tail -n 30 "$log" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "ref-dockerd: no answer on $sock after 30 s; last log lines:" >&2
    tail -n 30 "$log" >&2
    exit 1
}

stop() {
    local pid
    if ! pid=$(running_pid); then
        echo "ref-dockerd: not running"
        return 0
    fi
    echo "ref-dockerd: stopping pid $pid"
    kill -TERM "$pid"
    for _ in $(seq 1 300); do
        if [[ ! -d /proc/$pid ]]; then
            # the namespace exists only for this daemon: leave nothing behind
            ip netns delete "$netns" 2>/dev/null || true
            echo "ref-dockerd: stopped"
            return 0
        fi
        sleep 0.1
    done
    echo "ref-dockerd: pid $pid still alive after 30 s, sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    restart) stop; start ;;
    status)
        if pid=$(running_pid); then echo "running (pid $pid, $sock)"; else echo "not running"; exit 3; fi ;;
    *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
