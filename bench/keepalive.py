"""The CA connection of an order: the blocking transport of common/io
(Apache's client; nginx's keeps connections the same way) sending GETs of
pebble's directory: on one kept connection ("keep"), on a new connection
each resuming the TLS session ("resume"), on a new connection with a full
handshake each ("fresh", the behaviour before keep-alive), in rotating
rounds.  Prints milliseconds per request of each and, last, "keepalive
speedup = X" (fresh over keep, medians of the rounds).  TCP_NODELAY is on
in all three (it is not switchable).

Environment: BENCH_ROUNDS (default 5), BENCH_REQUESTS (per round, default
50).
"""

import os
import subprocess
import sys

import benchlib
from benchlib import log, session

REPO = os.path.abspath(os.path.join(benchlib.HERE, ".."))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "50"))


def build_client(work):
    lib = os.path.join(REPO, "build", "libacmecore.a")
    if not os.path.exists(lib):
        sys.exit("build/libacmecore.a missing: run ./build.sh build first")
    exe = os.path.join(work, "keepalive_client")
    subprocess.run(["cc", "-O2", "-std=c11", "-D_GNU_SOURCE",
                    "-I", os.path.join(REPO, "common", "core"),
                    "-I", os.path.join(REPO, "common", "io"),
                    os.path.join(benchlib.HERE, "keepalive_client.c"), lib,
                    "-o", exe, "-lssl", "-lcrypto", "-ljansson", "-lpthread"],
                   check=True)
    return exe


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def main():
    modes = ["keep", "resume", "fresh"]
    times = {m: [] for m in modes}
    with session("acme-bench-keepalive-", True) as (work, pebble):
        exe = build_client(work)
        for r in range(ROUNDS):
            for mode in modes[r % 3:] + modes[:r % 3]:
                out = subprocess.run([exe, pebble.directory_url, pebble.ca_pem,
                                      str(REQUESTS), mode],
                                     stdout=subprocess.PIPE, check=True, timeout=300)
                ms = float(out.stdout.decode().strip())
                times[mode].append(ms)
                log("round %d %-6s %.2f ms/request" % (r + 1, mode, ms))
    keep, resume, fresh = (median(times[m]) for m in modes)
    print("ms per request: keep-alive %.2f, new connection + session resumed %.2f, "
          "new connection + full handshake %.2f" % (keep, resume, fresh))
    print("keepalive speedup = %.2f" % (fresh / keep if keep > 0 else float("inf")))


if __name__ == "__main__":
    main()
