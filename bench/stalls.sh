#!/bin/bash
# Request latency in one nginx worker (worker_processes 1), idle vs while
# RSA-4096 certificates are ordered from pebble (bench/stalls.py): a bounded
# load generator on loopback (bench/stalls_client.c: sequential keep-alive
# GETs of a small static file, each request's latency recorded).
# Needs ./build.sh build.  --old DIR also runs DIR/ngx_http_acme_module.so
# (before/after in one run).  The last line is
# "max added latency = X ms, p99 idle = A ms, p99 busy = B ms".
#
#   STALLS_ROUNDS=3 STALLS_CERTS=4 bench/stalls.sh [--old DIR]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec timeout --kill-after=10 1800 /usr/bin/python3 bench/stalls.py "$@"
