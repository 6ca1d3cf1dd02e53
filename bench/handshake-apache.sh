#!/bin/bash
# Full-handshake throughput, one Apache child (mpm_event, KeepAlive Off,
# SSLSessionCache none, SSLSessionTickets off): a certificate managed by
# mod_acme_auto (hot-swapped, and loaded from the store at startup) vs the
# same certificate as a static SSLCertificateFile, for ECDSA P-256 and
# RSA-2048, in alternating runs.  Needs the module built (./build.sh build).
# The last line is "cpu ratio managed/static = X" (server CPU per handshake,
# managed over static, worst cell of ECDSA/RSA x TLS 1.2/1.3).
#
#   BENCH_SECONDS=3 BENCH_ROUNDS=3 BENCH_CLIENTS=2 bench/handshake-apache.sh [--no-managed]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec timeout --kill-after=10 900 /usr/bin/python3 bench/handshake_apache.py "$@"
