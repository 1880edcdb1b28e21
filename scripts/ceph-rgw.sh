#!/usr/bin/env bash
# A throw-away S3 server for the tests: a one-node Ceph cluster (one monitor, one OSD that keeps
# objects in RAM, no manager, no cephx between the daemons) and a RADOS Gateway answering S3 on
# 127.0.0.1. Nothing is written outside DIR.
#
#   scripts/ceph-rgw.sh start DIR PORT   start; prints KEY=VALUE lines (S3_ENDPOINT, S3_REGION,
#                                        S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY) on stdout and
#                                        writes them to DIR/env; progress and errors go to stderr
#   scripts/ceph-rgw.sh stop DIR         stop what `start DIR` started (only those processes),
#                                        then delete DIR's contents
#
# DIR must be empty, absent, or an earlier DIR of this script (reused after stopping it).
# Environment: MON_PORT (default: a free port chosen by the kernel), S3_REGION (us-east-1),
# RGW_ADDRESS (the gateway's listening address, 127.0.0.1; the S3 container image of
# deploy/docker/ceph-rgw/ sets 0.0.0.0),
# S3_ACCESS_KEY_ID / S3_SECRET_ACCESS_KEY (random), CEPH_START_TIMEOUT (seconds, 120),
# RGW_STORAGE_CLASSES (space-separated, default none: storage classes besides STANDARD, each with a
# data pool of its own, added to the default placement before the gateway starts, which is when
# radosgw reads them; test/storage/tiering-ceph.test.ts).
# Debian packages: ceph-mon ceph-osd radosgw ceph-common curl (scripts/test.mjs installs them).
#
# DIR/pids lists "PID NAME" for each daemon; the gateway may be restarted by the tests
# (test/helpers/ceph.ts) as long as they keep that list true.
set -euo pipefail

MARK=.mediary-ceph-rgw

say() { printf '[ceph-rgw %s] %s\n' "$(date +%T)" "$*" >&2; }

# Is PID still the daemon NAME we started with DIR's config? (pids get reused)
is_ours() {
  local pid=$1 name=$2 dir=$3
  [[ -r /proc/$pid/comm && "$(</proc/"$pid"/comm)" == "$name" ]] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "$dir/ceph.conf"
}

# Stops the daemons listed in DIR/pids, newest first: the OSD reports its shutdown to the
# monitor, so the monitor goes last. TERM, then KILL after 10 s.
stop_daemons() {
  local dir=$1 pid name i
  [[ -f $dir/pids ]] || return 0
  while read -r pid name; do
    [[ -n ${pid:-} ]] && is_ours "$pid" "$name" "$dir" || continue
    kill -TERM "$pid" 2>/dev/null || continue
    for ((i = 0; i < 100; i++)); do
      is_ours "$pid" "$name" "$dir" || break
      sleep 0.1
    done
    if is_ours "$pid" "$name" "$dir"; then
      say "$name ($pid) ignored TERM for 10 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done < <(tac "$dir/pids")
  rm -f "$dir/pids"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + RANDOM % 20000))
}

wait_until() { # wait_until WHAT COMMAND...
  local what=$1
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < DEADLINE)) || fail "$what within ${CEPH_START_TIMEOUT:-120} s"
    sleep 0.1
  done
}

fail() {
  say "ERROR: $*; logs in $DIR/log"
  stop_daemons "$DIR"
  exit 1
}

# Adds RGW_STORAGE_CLASSES to the default placement (the gateway made the default zone and
# zonegroup when it first started) and restarts the gateway, which reads placement at start only.
add_storage_classes() {
  local port=$1 class gw
  for class in $RGW_STORAGE_CLASSES; do
    say "storage class $class"
    radosgw-admin -c "$conf" zonegroup placement add --rgw-zonegroup default --placement-id default-placement \
      --storage-class "$class" >>"$DIR/log/placement.out" 2>&1 || fail "adding storage class $class failed"
    radosgw-admin -c "$conf" zone placement add --rgw-zone default --placement-id default-placement \
      --storage-class "$class" --data-pool "default.rgw.${class,,}.data" >>"$DIR/log/placement.out" 2>&1 ||
      fail "adding storage class $class to the zone failed"
  done
  gw=$(awk '$2 == "radosgw" { print $1 }' "$DIR/pids")
  kill -TERM "$gw"
  while is_ours "$gw" radosgw "$DIR"; do sleep 0.1; done
  sed -i '/ radosgw$/d' "$DIR/pids"
  radosgw -c "$conf" -f -n client.rgw.a >>"$DIR/log/rgw.out" 2>&1 &
  echo "$! radosgw" >>"$DIR/pids"
  wait_until "the gateway did not answer on port $port after adding storage classes" \
    curl -fsS -o /dev/null "http://127.0.0.1:$port/"
}

start() {
  local port=$2 mon_port region access secret fsid conf osd_uuid osd_id
  mkdir -p "$1"
  DIR=$(cd "$1" && pwd)
  if [[ -n "$(ls -A "$DIR")" ]]; then
    [[ -f $DIR/$MARK ]] || { say "$DIR is neither empty nor made by this script"; exit 1; }
    stop_daemons "$DIR"
    find "$DIR" -mindepth 1 -delete
  fi
  for bin in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool curl; do
    command -v "$bin" >/dev/null || { say "$bin is missing (Debian: ceph-mon ceph-osd radosgw ceph-common curl)"; exit 1; }
  done
  touch "$DIR/$MARK"
  mkdir -p "$DIR"/{mon,osd,rgw,run,log,tmp}
  : >"$DIR/pids"
  mon_port=${MON_PORT:-$(free_port)}
  region=${S3_REGION:-us-east-1}
  access=${S3_ACCESS_KEY_ID:-MEDIARYTEST$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)}
  secret=${S3_SECRET_ACCESS_KEY:-$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')}
  fsid=$(</proc/sys/kernel/random/uuid)
  conf=$DIR/ceph.conf
  DEADLINE=$((SECONDS + ${CEPH_START_TIMEOUT:-120}))

  # The admin socket is off: a unix socket path longer than 107 bytes fails in deep DIRs.
  # paxos propose interval 0.1 s (default 1 s) makes the gateway's pool creation several times faster.
  cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind msgr1 = false
ms bind ipv6 = false
ms mon client mode = crc secure
auth cluster required = none
auth service required = none
auth client required = none
keyring = $DIR/keyring
run dir = $DIR/run
admin socket =
pid file = $DIR/run/\$name.pid
log file = $DIR/log/\$name.log
log to stderr = false
err to stderr = false
crash dir = $DIR/tmp
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
mon data avail warn = 2
mon data avail crit = 1
paxos propose interval = 0.1

[mon]
mon data = $DIR/mon/\$cluster-\$id

[osd]
osd data = $DIR/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = $((4 * 1024 * 1024 * 1024))

[client]
rgw data = $DIR/rgw
rgw frontends = beast endpoint=${RGW_ADDRESS:-127.0.0.1}:$port
EOF

  say "monitor on 127.0.0.1:$mon_port"
  ceph-authtool --create-keyring "$DIR/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
  ceph-authtool "$DIR/keyring" --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' >/dev/null
  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$DIR/tmp/monmap" >/dev/null
  ceph-mon -c "$conf" --mkfs -i a --monmap "$DIR/tmp/monmap" --keyring "$DIR/keyring" \
    >"$DIR/log/mon-mkfs.out" 2>&1 || fail "ceph-mon --mkfs failed"
  ceph-mon -c "$conf" -f -i a >"$DIR/log/mon.out" 2>&1 &
  echo "$! ceph-mon" >>"$DIR/pids"
  wait_until "the monitor did not answer" ceph -c "$conf" --connect-timeout 3 mon stat

  say "memstore OSD"
  osd_uuid=$(</proc/sys/kernel/random/uuid)
  osd_id=$(ceph -c "$conf" osd new "$osd_uuid")
  mkdir -p "$DIR/osd/ceph-$osd_id"
  ceph-osd -c "$conf" -i "$osd_id" --mkfs --osd-uuid "$osd_uuid" >"$DIR/log/osd-mkfs.out" 2>&1 ||
    fail "ceph-osd --mkfs failed"
  ceph-osd -c "$conf" -f -i "$osd_id" >"$DIR/log/osd.out" 2>&1 &
  echo "$! ceph-osd" >>"$DIR/pids"
  osd_up() { ceph -c "$conf" osd stat -f json | grep -q '"num_up_osds":1[,}]'; }
  wait_until "the OSD did not come up" osd_up

  say "gateway on 127.0.0.1:$port"
  radosgw -c "$conf" -f -n client.rgw.a >"$DIR/log/rgw.out" 2>&1 &
  echo "$! radosgw" >>"$DIR/pids"
  wait_until "the gateway did not answer on port $port" curl -fsS -o /dev/null "http://127.0.0.1:$port/"
  radosgw-admin -c "$conf" user create --uid=mediary-test --display-name='Mediary tests' \
    --access-key="$access" --secret-key="$secret" >"$DIR/log/user.json" 2>"$DIR/log/user.err" ||
    fail "radosgw-admin user create failed"
  [[ -n ${RGW_STORAGE_CLASSES:-} ]] && add_storage_classes "$port"

  cat >"$DIR/env" <<EOF
S3_ENDPOINT=http://127.0.0.1:$port
S3_REGION=$region
S3_ACCESS_KEY_ID=$access
S3_SECRET_ACCESS_KEY=$secret
EOF
  say "ready in ${SECONDS} s"
  cat "$DIR/env"
}

stop() {
  [[ -d $1 ]] || return 0
  local dir
  dir=$(cd "$1" && pwd)
  [[ -f $dir/$MARK ]] || { say "$dir was not made by this script; leaving it alone"; exit 1; }
  stop_daemons "$dir"
  find "$dir" -mindepth 1 -delete
}

case "${1:-}" in
start) [[ $# -eq 3 ]] || { echo "usage: $0 start DIR PORT" >&2; exit 2; }; start "$2" "$3" ;;
stop) [[ $# -eq 2 ]] || { echo "usage: $0 stop DIR" >&2; exit 2; }; stop "$2" ;;
*) echo "usage: $0 start DIR PORT | $0 stop DIR" >&2; exit 2 ;;
esac
