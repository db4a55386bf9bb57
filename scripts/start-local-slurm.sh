#!/usr/bin/env bash
# A real SLURM on this one host, for tests/test_slurm.py and CI: munge, a controller and two
# slurmd nodes (n1, n2: one CPU each, partition `debug`). Runs as root, from Debian's
# `slurm-wlm` and `munge` packages (.ci/run installs them). Idempotent: a running cluster
# with this configuration is left as it is.
#   scripts/start-local-slurm.sh         # then: sinfo; sbatch --nodes=2 job.sh; squeue; scancel
#   scripts/start-local-slurm.sh stop
# Both nodes are this host, told apart by SLURM: a job on --nodes=2 gets one step per node with
# SLURMD_NODENAME=n1 or n2, and `scontrol show node n2` gives NodeAddr=127.0.0.2 (n1: 127.0.0.1),
# the address deploy/slurm/sweep.sbatch starts that node's Ray on. slurmd listens on ports
# 17001/17002 and slurmctld on 6817 (SLURM's default).
set -euo pipefail
CONF=/etc/slurm/slurm.conf

stop() {
    scontrol shutdown 2>/dev/null || true
    local n
    for n in n1 n2; do
        if [ -f "/run/slurmd-$n.pid" ]; then kill "$(cat "/run/slurmd-$n.pid")" 2>/dev/null || true; fi
    done
}
if [ "${1:-}" = stop ]; then
    stop
    exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "start-local-slurm: run as root" >&2; exit 1; }
for tool in slurmctld slurmd munged mungekey; do
    command -v "$tool" >/dev/null || {
        echo "start-local-slurm: no $tool: apt-get install slurm-wlm munge" >&2
        exit 1
    }
done

# munge: one key, one daemon
if [ ! -f /etc/munge/munge.key ]; then
    mungekey -c -f
    chown munge:munge /etc/munge/munge.key # munged refuses a key it does not own
    chmod 0400 /etc/munge/munge.key
fi
mkdir -p /run/munge && chown munge:munge /run/munge
munge -n >/dev/null 2>&1 || su munge -s /bin/sh -c /usr/sbin/munged

host=$(hostname)
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd-n1 /var/spool/slurmd-n2 /var/log/slurm
new=$(mktemp)
cat >"$new" <<CONF
ClusterName=local
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd-%n
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd-%n.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd-%n.log
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
KillWait=10
# A requeued job may start again after cred_expire + 1 s (default 120), and the scheduler
# looks at the queue every few seconds (default 60): tests wait less.
AuthInfo=cred_expire=10
SchedulerParameters=sched_interval=5,bf_interval=5
NodeName=n1 NodeHostname=$host NodeAddr=127.0.0.1 Port=17001 CPUs=1 RealMemory=8000 State=UNKNOWN
NodeName=n2 NodeHostname=$host NodeAddr=127.0.0.2 Port=17002 CPUs=1 RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP
CONF
if ! cmp -s "$new" "$CONF"; then
    stop # daemons started with another configuration
    sleep 1
    mv "$new" "$CONF"
    chmod 644 "$CONF"
else
    rm -f "$new"
fi

scontrol ping 2>/dev/null | grep -q UP || slurmctld
for n in n1 n2; do
    if ! { [ -f "/run/slurmd-$n.pid" ] && kill -0 "$(cat "/run/slurmd-$n.pid")" 2>/dev/null; }; then
        slurmd -N "$n"
    fi
done
for _ in $(seq 1 30); do
    if [ "$(sinfo -h -o %T 2>/dev/null | sort -u | tr -d '\n')" = idle ]; then
        sinfo
        exit 0
    fi
    sleep 1
done
echo "start-local-slurm: nodes did not become idle:" >&2
sinfo >&2 || true
exit 1
