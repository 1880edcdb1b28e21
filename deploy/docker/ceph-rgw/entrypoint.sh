#!/bin/bash
# MinIO's command line over scripts/ceph-rgw.sh: `server DIR [--address [HOST]:PORT] [other flags]`.
# Starts the monitor, the OSD and the gateway (listening on HOST, default every address, and PORT,
# default 9000) with the S3 user MINIO_ROOT_USER / MINIO_ROOT_PASSWORD (or S3_ACCESS_KEY_ID /
# S3_SECRET_ACCESS_KEY), then stays until SIGTERM (stops the daemons) or until the gateway dies.
set -euo pipefail
[[ ${1:-} == server && -n ${2:-} ]] || { echo "usage: server DIR [--address [HOST]:PORT]" >&2; exit 2; }
dir=$2/ceph
shift 2
address=:9000
while [[ $# -gt 0 ]]; do
  case $1 in
  --address) address=$2; shift 2 ;;
  --address=*) address=${1#--address=}; shift ;;
  --*=*) shift ;;
  --*) shift; [[ $# -gt 0 && $1 != --* ]] && shift || true ;;
  *) shift ;;
  esac
done
host=${address%:*}
export RGW_ADDRESS=${host:-0.0.0.0}
export S3_ACCESS_KEY_ID=${MINIO_ROOT_USER:-${S3_ACCESS_KEY_ID:?set MINIO_ROOT_USER}}
export S3_SECRET_ACCESS_KEY=${MINIO_ROOT_PASSWORD:-${S3_SECRET_ACCESS_KEY:?set MINIO_ROOT_PASSWORD}}
stopping=0
trap 'stopping=1' TERM INT
ceph-rgw.sh start "$dir" "${address##*:}" >/dev/null
gateway=$(awk '$2 == "radosgw" { print $1 }' "$dir/pids")
# `mc ready local` (the health check) asks this port once the S3 user exists.
echo "${address##*:}" >/run/ceph-rgw.ready
echo "ceph-rgw: S3 on ${RGW_ADDRESS}:${address##*:}, user ${S3_ACCESS_KEY_ID}"
while [[ $stopping == 0 ]] && kill -0 "$gateway" 2>/dev/null; do
  sleep 1 &
  wait $! || true
done
rm -f /run/ceph-rgw.ready
ceph-rgw.sh stop "$dir"
if [[ $stopping == 0 ]]; then
  echo "ceph-rgw: the gateway exited; logs were in $dir/log" >&2
  exit 1
fi
