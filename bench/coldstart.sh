#!/bin/bash
# Cold start to the first certificate served: nginx and Apache, a fresh store,
# 2 names, pebble on loopback; median of BENCH_RUNS (5) runs each.  Beside them
# Debian's mod_md (when /usr/lib/apache2/modules/mod_md.so exists): server start
# -> certificate obtained (staged; mod_md serves it only after a restart).
# Needs the modules built (./build.sh build).  The last line is
# "cold start nginx = X s, apache = Y s, mod_md obtain = Z s" (Z "n/a" without
# mod_md).
#
#   BENCH_RUNS=5 bench/coldstart.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec timeout --kill-after=10 900 /usr/bin/python3 bench/coldstart.py "$@"
