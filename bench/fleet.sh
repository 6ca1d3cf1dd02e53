#!/bin/bash
# Several servers, one certificate (issue 15): from a renewed certificate's
# "issued" line on the node that ordered it to the LAST node of the fleet
# serving it (a handshake shows the new serial), N nginx nodes sharing a
# real etcd (bench/fleet.py).  Needs the modules built (./build.sh build)
# and etcd-server.  The last line is
# "fleet: issuance to last node serving = X ms (median of K), nodes N".
#
#   FLEET_RENEWALS=3 FLEET_VALIDITY=20 bench/fleet.sh [N]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec timeout --kill-after=10 900 /usr/bin/python3 bench/fleet.py "$@"
