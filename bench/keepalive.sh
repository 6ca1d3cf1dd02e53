#!/bin/bash
# Requests to the CA on one kept connection vs a new connection each (TLS
# session resumed, or a full handshake as before keep-alive): the blocking
# transport of common/io against pebble, rotating rounds.
# Needs ./build.sh build.  The last line is "keepalive speedup = X".
#
#   BENCH_ROUNDS=5 BENCH_REQUESTS=50 bench/keepalive.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec timeout --kill-after=10 600 /usr/bin/python3 bench/keepalive.py "$@"
