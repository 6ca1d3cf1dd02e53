#!/bin/bash
# Short-lived certificates renewed again and again under a handshake load
# (bench/shortlived.py): no failed handshake, no expired certificate
# served, every renewal served before 3/4 of its predecessor's lifetime.
# Needs the modules built (./build.sh build).  The last line says whether
# all of that held.
#
#   SHORT_CERTS=20 SHORT_VALIDITY=90 SHORT_RENEWALS=3 SHORT_CLIENTS=4 bench/shortlived.sh [nginx|apache]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec timeout --kill-after=10 1500 /usr/bin/python3 bench/shortlived.py "$@"
