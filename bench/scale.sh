#!/bin/bash
# N managed certificates on one nginx and one Apache (bench/scale.py):
# time until all are served, accounts created, worker memory per
# certificate beyond the certificate itself, restart time with N stored,
# status size and time.  Needs the modules built (./build.sh build).
# The last line is "scale N=...: nginx: ...; apache: ...".
#
#   bench/scale.sh [N] [--only nginx|apache]       (N defaults to 1000)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec timeout --kill-after=10 3600 /usr/bin/python3 bench/scale.py "$@"
