#!/bin/bash
# Issuance to served in every worker: nginx workers and Apache children,
# from the "issued" log line to the last process's "installed" line, per
# certificate (bench/pickup.py).  Needs the modules built (./build.sh build).
# The last line is "issuance -> served in every worker: ...".
#
#   PICKUP_ROUNDS=2 PICKUP_CERTS=3 PICKUP_WORKERS=4 bench/pickup.sh [--old DIR] [--only nginx|apache]
#
# --old DIR: also DIR/ngx_http_acme_module.so and DIR/mod_acme_auto.so
# (copies of an earlier build), for a before/after comparison in one run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec timeout --kill-after=10 900 /usr/bin/python3 bench/pickup.py "$@"
