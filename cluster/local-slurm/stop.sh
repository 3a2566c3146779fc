#!/usr/bin/env bash
# Stop the single-node Slurm cluster started by start.sh: cancels all jobs,
# then stops slurmd, slurmctld, slurmdbd, MariaDB and munged, in that order.
# Idempotent and bounded: daemons that are not running are skipped, each
# daemon gets LOCAL_SLURM_STOP_TIMEOUT seconds (default 30) after SIGTERM
# before SIGKILL.  Never fails because something is already stopped.
set -euo pipefail

RUN_DIR=/run/slurm-local
TIMEOUT="${LOCAL_SLURM_STOP_TIMEOUT:-30}"

log() { printf '[local-slurm] %s\n' "$*" >&2; }

[[ $EUID -eq 0 ]] || { log "ERROR: must run as root"; exit 1; }

# pids_of <exe-name> [pidfile]: pid from the pid file if it is alive and has
# that executable name, else all processes with exactly that name.
pids_of() {
    local name=$1 pidfile=${2:-} pid
    if [[ -n $pidfile && -s $pidfile ]]; then
        pid=$(<"$pidfile")
        if [[ -r /proc/$pid/comm && $(</proc/"$pid"/comm) == "$name" ]]; then
            echo "$pid"; return 0
        fi
    fi
    pgrep -x "$name" || true
}

# stop_daemon <exe-name> [pidfile]: SIGTERM, wait up to $TIMEOUT s, SIGKILL.
stop_daemon() {
    local name=$1 pidfile=${2:-} pids p deadline
    pids=$(pids_of "$name" "$pidfile")
    if [[ -z $pids ]]; then
        log "$name not running"
        return 0
    fi
    log "stopping $name (pid $(echo $pids))"
    kill -TERM $pids 2>/dev/null || true
    deadline=$((SECONDS + TIMEOUT))
    for p in $pids; do
        while kill -0 "$p" 2>/dev/null; do
            if (( SECONDS >= deadline )); then
                log "$name pid $p ignored SIGTERM for ${TIMEOUT}s; sending SIGKILL"
                kill -KILL "$p" 2>/dev/null || true
                sleep 1
                break
            fi
            sleep 0.5
        done
    done
    [[ -n $pidfile ]] && rm -f "$pidfile"
    return 0
}

# Cancel all jobs so no slurmstepd/job processes outlive the cluster.
if command -v scontrol >/dev/null && timeout 5 scontrol ping >/dev/null 2>&1; then
    if [[ -n $(timeout 10 squeue -h -o %i 2>/dev/null) ]]; then
        log "cancelling all jobs"
        timeout 10 scancel $(timeout 10 squeue -h -o %i) || true
        # Give the jobs' epilogs a moment while slurmd is still up.
        for _ in $(seq 1 15); do
            [[ -z $(timeout 10 squeue -h -o %i 2>/dev/null) ]] && break
            sleep 1
        done
    fi
fi

stop_daemon slurmd    "$RUN_DIR/slurmd.pid"
stop_daemon slurmstepd
stop_daemon slurmctld "$RUN_DIR/slurmctld.pid"
stop_daemon slurmdbd  "$RUN_DIR/slurmdbd.pid"
stop_daemon mariadbd  /run/mysqld/mysqld.pid
stop_daemon munged    /run/munge/munged.pid
log "local Slurm cluster stopped"
