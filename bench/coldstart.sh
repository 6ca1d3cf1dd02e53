#!/bin/bash
# Cold start to the first certificate served: nginx and Apache, a fresh store,
# 2 names, pebble on loopback; median of BENCH_RUNS (5) runs each.  Needs the
# modules built (./build.sh build).  The last line is
# "cold start nginx = X s, apache = Y s".
#
#   BENCH_RUNS=5 bench/coldstart.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec timeout --kill-after=10 900 /usr/bin/python3 bench/coldstart.py "$@"
