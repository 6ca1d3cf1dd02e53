"""Shared parts of the handshake benchmarks (handshake.py for nginx,
handshake_apache.py for Apache): the client (parallel `openssl s_time -new`),
CPU pinning, certificate material, the alternating rounds and the summary.

Environment: BENCH_SECONDS (per run, default 3), BENCH_ROUNDS (default 3),
BENCH_CLIENTS (parallel openssl s_time processes, default 2).
"""

import contextlib
import glob
import math
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
# the test harness (t/integration): servers, pebble, certificates, clients
sys.path.insert(0, os.path.join(HERE, "..", "t", "integration"))

from nginx_server import make_world_traversable_tmpdir  # noqa: E402
from pebble import Pebble, hold_port_lock, make_ca, make_leaf  # noqa: E402

SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "2"))

# (label = key= spec, server name); the store's certificate id is
# "<name>_<spec with ':' -> '-'>"
KEYS = [
    ("ecdsa:256", "e.example.test"),
    ("rsa:2048", "r.example.test"),
]

NCPU = os.cpu_count() or 1
# With 2+ CPUs the server gets CPU 0 and the clients the others, so that
# client and server do not steal each other's time slices.
PINNED = NCPU >= 2 and shutil.which("taskset") is not None
SERVER_CPU = 0
CLIENT_PIN = ["taskset", "-c", "1-%d" % (NCPU - 1)] if PINNED else []


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def split_bundle(path):
    """bundle.pem (key PEM + chain PEM) -> (key_pem, chain_pem)."""
    with open(path) as f:
        text = f.read()
    i = text.index("-----BEGIN CERTIFICATE-----")
    return text[:i].strip() + "\n", text[i:].strip() + "\n"


def store_bundles(state):
    """{label: (key_pem, chain_pem)} of the managed certificates in the
    issuer's store directory (state_path / AcmeStateDir)."""
    out = {}
    for label, name in KEYS:
        cid = "%s_%s" % (name, label.replace(":", "-"))
        out[label] = split_bundle(os.path.join(state, "certs", cid, "bundle.pem"))
    return out


def local_ca_bundles(work):
    """{label: (key_pem, chain_pem)} signed by a throw-away CA (the test
    harness's make_ca / make_leaf): lets the static variants run without
    pebble or the module (--no-managed)."""
    ca_key, ca_crt = make_ca(work, "bench-ca")
    with open(ca_crt) as f:
        ca_pem = f.read()
    out = {}
    for label, name in KEYS:
        key, crt = make_leaf(work, ca_key, ca_crt, "local-" + label.replace(":", "_"),
                             ["DNS:" + name], cn=name, key_type=label)
        with open(key) as f, open(crt) as g:
            out[label] = (f.read(), g.read() + ca_pem)
    return out


@contextlib.contextmanager
def session(prefix, with_managed):
    """(work dir, started Pebble or None) for one bench run: the port lock
    of the tests (one run per port offset at a time), a fresh work dir
    (removed after a run that ended well, kept and named otherwise), pebble
    stopped at the end."""
    hold_port_lock()
    work = make_world_traversable_tmpdir(prefix)
    pebble = None
    ok = False
    try:
        if with_managed:
            pebble = Pebble(work, nonce_reject=0)
            pebble.start()
        yield work, pebble
        ok = True
    finally:
        if pebble is not None:
            pebble.stop()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log("kept %s" % work)


def write_pem_files(work, bundles):
    """The same key and chain as plain files for the static variant:
    {label: (key_file, chain_file, key_pem, chain_pem)}."""
    out = {}
    for label, (key_pem, chain_pem) in bundles.items():
        base = os.path.join(work, label.replace(":", "_"))
        with open(base + ".key", "w") as f:
            f.write(key_pem)
        os.chmod(base + ".key", 0o600)
        with open(base + ".crt", "w") as f:
            f.write(chain_pem)
        out[label] = (base + ".key", base + ".crt", key_pem, chain_pem)
    return out


def cpu_seconds(pids):
    """CPU time used so far by all threads of the processes pids (the
    scheduler's nanosecond counters, not clock ticks)."""
    total = 0
    for pid in pids:
        task = "/proc/%d/task" % pid
        try:
            tids = os.listdir(task)
        except FileNotFoundError:
            continue
        for tid in tids:
            try:
                with open("%s/%s/schedstat" % (task, tid)) as f:
                    total += int(f.read().split()[0])
            except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
                pass
    return total / 1e9


# TLS versions measured by default: one cell per key type and version
PROTOS = os.environ.get("BENCH_PROTOS", "tls1_2 tls1_3").split()


def cells():
    """[(cell name, key label, extra s_time arguments)]: each key type with
    each TLS version of PROTOS (the servers must allow both: nginx 1.22
    needs "ssl_protocols TLSv1.2 TLSv1.3")."""
    return [("%s %s" % (label, p.replace("tls1_", "TLS1.")), label, ["-" + p])
            for label, _ in KEYS for p in PROTOS]


def s_time(port, seconds, pids=(), args=()):
    """Full handshakes/s from CLIENTS parallel `openssl s_time -new`, and
    the server's CPU seconds per handshake (None without pids): the clients
    may be the bottleneck (they verify the server's signature and do their
    half of the key exchange on the other CPU(s)), and then the server's CPU
    time shows a difference that the throughput hides."""
    procs = []
    cpu0 = cpu_seconds(pids)
    t0 = time.monotonic()
    for _ in range(CLIENTS):
        procs.append(subprocess.Popen(
            CLIENT_PIN + ["openssl", "s_time", "-connect", "127.0.0.1:%d" % port, "-new",
                          "-time", str(int(math.ceil(seconds)))] + list(args),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    total = 0
    for p in procs:
        out, _ = p.communicate(timeout=seconds + 60)
        text = out.decode(errors="replace")
        n = None
        for line in text.splitlines():
            # "1234 connections in 3.01s; ..."  (the first such line is -new)
            parts = line.split()
            if len(parts) > 3 and parts[1] == "connections" and parts[2] == "in" \
                    and parts[3].endswith("s;"):
                n = int(parts[0])
                break
        if n is None or p.returncode != 0:
            raise RuntimeError("s_time on port %d failed:\n%s" % (port, text[-2000:]))
        total += n
    wall = time.monotonic() - t0
    cpu = (cpu_seconds(pids) - cpu0) / total if pids and total else None
    return total / wall, cpu


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs))


def run_rounds(server, ports, variants, pids=()):
    """ports: {(label, variant): port}; pids: the server processes whose CPU
    time is counted.  ROUNDS rounds; in each, every cell (key type x TLS
    version, cells()) and every variant in turn, so that no variant owns a
    warm or a cold phase of the machine; the variants' order rotates from
    round to round, so that none always runs first after a cell change.
    Returns {(cell, variant): [(rate, cpu per handshake)]}."""
    rates = {(c, v): [] for c, _, _ in cells() for v in variants}
    log("%s%s, full handshakes, %d rounds x %.0f s per run, %d client(s)"
        % (server, " (CPU %d, clients on the others)" % SERVER_CPU if PINNED else "",
           ROUNDS, SECONDS, CLIENTS))
    for r in range(ROUNDS):
        k = r % len(variants)
        for cell, label, args in cells():
            for v in variants[k:] + variants[:k]:
                rate, cpu = s_time(ports[(label, v)], SECONDS, pids, args)
                rates[(cell, v)].append((rate, cpu))
                log("  round %d %-16s %-7s %8.1f handshakes/s%s"
                    % (r + 1, cell, v, rate,
                       "" if cpu is None else ", server %.0f us CPU each" % (cpu * 1e6)))
    return rates


def _median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def report(rates, variants, other_ratios=(), managed=True):
    """Median per (cell, variant) of the throughput and of the server's CPU
    time per handshake; then "ratio A/static (cell)" for each A in
    other_ratios, the same by server CPU time, then the managed ratios:
    "ratio managed/static = X", the geometric mean over the cells of the
    throughput ratios, and last "cpu ratio managed/static = X": the server
    CPU time per handshake, managed over static, of the worst cell (1.00:
    exactly as cheap as a static file)."""
    with_cpu = all(c is not None for xs in rates.values() for _, c in xs)
    names = [c for c, _, _ in cells()]
    print()
    print("%-16s %-8s %12s%s" % ("cell", "variant", "handshakes/s",
                                 "  server CPU us/handshake" if with_cpu else ""))
    med, cpu = {}, {}
    for cell in names:
        for v in variants:
            med[(cell, v)] = _median(r for r, _ in rates[(cell, v)])
            line = "%-16s %-8s %12.1f" % (cell, v, med[(cell, v)])
            if with_cpu:
                cpu[(cell, v)] = _median(c for _, c in rates[(cell, v)])
                line += "  %24.0f" % (cpu[(cell, v)] * 1e6)
            print(line)
    print()
    pairs = list(other_ratios) + ([("managed", "managed")] if managed else [])
    if with_cpu:
        # server CPU time per handshake, relative to static
        for name, v in pairs:
            for cell in names:
                print("cpu ratio %s/static (%s) = %.3f"
                      % (name, cell, cpu[(cell, v)] / cpu[(cell, "static")]))
    for name, v in other_ratios:
        for cell in names:
            print("ratio %s/static (%s) = %.3f"
                  % (name, cell, med[(cell, v)] / med[(cell, "static")]))
    if managed:
        per_cell = []
        for cell in names:
            x = med[(cell, "managed")] / med[(cell, "static")]
            per_cell.append(x)
            print("ratio managed/static (%s) = %.3f" % (cell, x))
        print("ratio managed/static = %.3f" % geomean(per_cell))
        if with_cpu:
            print("cpu ratio managed/static = %.3f"
                  % max(cpu[(c, "managed")] / cpu[(c, "static")] for c in names))
    sys.stdout.flush()
    return med


# -- instruction counts (--instructions) ----------------------------------
HANDSHAKES = int(os.environ.get("BENCH_HANDSHAKES", "200"))
WARM = 100
# BENCH_KEEP_DUMPS=DIR: keep each measure's callgrind dump there, named
# CELL-VARIANT.N, for callgrind_annotate (where a difference comes from)
KEEP_DUMPS = os.environ.get("BENCH_KEEP_DUMPS")
KEEP_DUMPS_AS = ["start"]
TLS_VERSIONS = {"TLS1.2": ssl.TLSVersion.TLSv1_2, "TLS1.3": ssl.TLSVersion.TLSv1_3}


def handshakes(port_, version, n):
    """n full handshakes (no session reuse), the server's chain not checked:
    the client's work is not counted."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ctx.maximum_version = version
    for _ in range(n):
        with socket.create_connection(("127.0.0.1", port_), timeout=60) as raw:
            with ctx.wrap_socket(raw):
                pass


def callgrind_cmd(out_dir, marker_function):
    """valgrind's callgrind in front of a server: counters dumped into
    out_dir/cg.PID.N before each call of marker_function (the status
    page's handler: marker(http_port))."""
    return ["valgrind", "--tool=callgrind", "--dump-instr=no",
            "--dump-before=%s" % marker_function,
            "--callgrind-out-file=%s/cg.%%p" % out_dir]


def marker(http_port):
    """A request for the status page: the counted process dumps its counters
    before the handler runs (callgrind_cmd)."""
    with socket.create_connection(("127.0.0.1", http_port), timeout=60) as c:
        c.sendall(b"GET /acme-status HTTP/1.1\r\nHost: marker.test\r\n"
                  b"Connection: close\r\n\r\n")
        while c.recv(65536):
            pass


def next_dump(out_dir, pid, seen):
    """Instructions (Ir) of the child's next dump file."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        new = set(glob.glob(os.path.join(out_dir, "cg.%d.*" % pid))) - seen
        for path in sorted(new, key=lambda p: int(p.rsplit(".", 1)[1])):
            with open(path) as f:
                text = f.read()
            m = re.search(r"(?m)^(?:summary|totals): (\d+)", text)
            if m:
                seen.add(path)
                if KEEP_DUMPS:
                    os.rename(path, os.path.join(KEEP_DUMPS, "%s.%d" % (KEEP_DUMPS_AS[0],
                                                                      len(seen))))
                else:
                    os.unlink(path)
                return int(m.group(1))
        time.sleep(0.05)
    raise RuntimeError("no callgrind dump of %d in %s" % (pid, out_dir))


def count_rounds(ports, variants, pid, out_dir, http_port):
    """Instructions the process pid executes per full handshake (under
    callgrind_cmd): {(cell, variant): [per round]}.  Per round, every
    cell and variant in turn (order rotating).  Each measure: a marker
    request, a second one (that interval: the marker's own cost), HANDSHAKES
    handshakes, a third marker; per handshake = (third - second interval) /
    HANDSHAKES."""
    rounds = int(os.environ.get("BENCH_ROUNDS", "3"))
    counts, seen = {}, set()
    log("instructions of process %d under callgrind: %d rounds x %d handshakes"
        % (pid, rounds, HANDSHAKES))
    # every thread of the process does each kind of handshake before anything
    # is counted: a thread's first use of OpenSSL (its RAND state, error
    # queue, an RSA key's blinding) costs far more than a handshake
    for cell, label, _ in cells():
        for v in variants:
            handshakes(ports[(label, v)], TLS_VERSIONS[cell.split()[1]], WARM)
    for path in glob.glob(os.path.join(out_dir, "cg.%d.*" % pid)):
        os.unlink(path)                 # the issuance's requests
    marker(http_port)
    next_dump(out_dir, pid, seen)
    for r in range(rounds):
        k = r % len(variants)
        for cell, label, _ in cells():
            version = TLS_VERSIONS[cell.split()[1]]
            for v in variants[k:] + variants[:k]:
                marker(http_port)
                next_dump(out_dir, pid, seen)
                marker(http_port)
                base = next_dump(out_dir, pid, seen)
                handshakes(ports[(label, v)], version, HANDSHAKES)
                KEEP_DUMPS_AS[0] = "%s-%s" % (cell.replace(" ", "_"), v)
                marker(http_port)
                each = (next_dump(out_dir, pid, seen) - base) / HANDSHAKES
                counts.setdefault((cell, v), []).append(each)
                log("  round %d %-16s %-7s %10.0f instructions per handshake"
                    % (r + 1, cell, v, each))
    return counts


def report_instructions(counts, variants, others):
    names = [c for c, _, _ in cells()]
    med = {key: statistics.median(xs) for key, xs in counts.items()}
    print()
    print("%-16s %-8s %14s %8s" % ("cell", "variant", "instructions", "spread"))
    for cell in names:
        for v in variants:
            xs = counts[(cell, v)]
            print("%-16s %-8s %14.0f %7.2f%%" % (cell, v, med[(cell, v)],
                  100.0 * (max(xs) - min(xs)) / med[(cell, v)]))
    print()
    worst = 0.0
    for name in others:
        for cell in names:
            x = med[(cell, name)] / med[(cell, "static")]
            print("instructions ratio %s/static (%s) = %.4f" % (name, cell, x))
            if name == "managed":
                worst = max(worst, x)
    print("instructions ratio managed/static = %.4f" % worst)
