#!/bin/bash
# A one-node Slurm cluster on localhost (Debian's slurm-wlm + munge), for tests and fire drills.
#   launch/slurm/local_cluster.sh start DIR   -> prints `export SLURM_CONF=DIR/slurm.conf`
#   launch/slurm/local_cluster.sh stop DIR
# Needs root (munge and slurmd run as root here) and: apt-get install slurm-wlm munge
set -euo pipefail
ACTION=${1:?start|stop}
DIR=$(realpath -m "${2:?state folder}")
case "$ACTION" in
start)
  mkdir -p "$DIR"/{state,spool,log} /run/munge /var/log/munge /var/lib/munge
  [ -f /etc/munge/munge.key ] || mungekey --create --force >/dev/null 2>&1 || \
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  chmod 400 /etc/munge/munge.key
  pgrep -x munged >/dev/null || munged --force
  CPUS=$(nproc)
  MEM=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  cat > "$DIR/slurm.conf" <<CONF
ClusterName=local
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# A requeued job waits cred_expire seconds before it may start again (Slurm's default 120 s).
AuthInfo=cred_expire=20
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
JobRequeue=1
MpiDefault=none
SchedulerType=sched/backfill
KillWait=60
InactiveLimit=0
MinJobAge=300
NodeName=localhost CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF="$DIR/slurm.conf"
  slurmctld -f "$SLURM_CONF"
  slurmd -f "$SLURM_CONF"
  for _ in $(seq 60); do
    sinfo -h -o %T 2>/dev/null | grep -qE "idle|mixed|alloc" && break
    sleep 1
  done
  sinfo -h -o %T | grep -qE "idle|mixed|alloc" || { echo "slurm did not come up; see $DIR/log" >&2; exit 1; }
  echo "export SLURM_CONF=$SLURM_CONF"
  ;;
stop)
  [ -f "$DIR/slurmd.pid" ] && kill "$(cat "$DIR/slurmd.pid")" 2>/dev/null || true
  [ -f "$DIR/slurmctld.pid" ] && kill "$(cat "$DIR/slurmctld.pid")" 2>/dev/null || true
  ;;
esac
