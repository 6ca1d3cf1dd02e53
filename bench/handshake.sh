#!/bin/bash
# Full-handshake throughput, one nginx worker (keepalive_timeout 0, no
# session cache, no tickets): the managed certificate vs the same certificate
# as a static ssl_certificate file vs the same PEM via "ssl_certificate
# data:$var", for ECDSA P-256 and RSA-2048, each over TLS 1.2 and TLS 1.3, in
# alternating runs.  Needs the module built (./build.sh build).  The last
# line is "cpu ratio managed/static = X": the server CPU time per handshake,
# managed over static, of the worst cell.
#
#   BENCH_SECONDS=3 BENCH_ROUNDS=3 BENCH_CLIENTS=2 bench/handshake.sh [--no-managed]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec timeout --kill-after=10 900 /usr/bin/python3 bench/handshake.py "$@"
