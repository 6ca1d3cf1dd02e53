#!/bin/bash
# Where a serving worker's / child's memory goes per certificate (issue 9):
# N managed certificates against the same N as plain files, per mapping
# of /proc/PID/smaps (bench/memprobe.py).  Needs the modules built.
#
#   bench/memprobe.sh [N] [--only nginx|apache] [--keep DIR]   (N defaults to 200)
#
# MEMPROBE_BEFORE=1 also prints the totals before the first handshake.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec timeout --kill-after=10 3600 /usr/bin/python3 bench/memprobe.py "$@"
