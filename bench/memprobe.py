#!/usr/bin/python3
"""Where a serving worker's memory goes (issue 9): N managed certificates
against the same N as plain files, per mapping of /proc/PID/smaps.

    bench/memprobe.sh [N] [--only nginx|apache] [--keep DIR]   (N = 200)

Issues N certificates from pebble (bench/scale.py's configurations), then
starts the server on the stored certificates, on the same certificates as
plain files, and with 0 certificates (and measures once right after
issuing them all, "issued"); prints, per mapping kind (heap,
anonymous, shared zone, libraries...), Rss / Pss / Private of the smallest
worker / child in each case and the difference per certificate.
"""

import collections
import os
import sys
import time

import benchlib
from benchlib import log, split_bundle
import scale


def smaps(pid):
    out = collections.defaultdict(lambda: [0, 0, 0])   # kind -> rss, pss, private
    kind = None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            parts = line.split()
            if not parts:
                continue
            if not parts[0].endswith(":") or len(parts[0]) > 30 and "-" in parts[0]:
                # header: addr perms off dev inode [path]
                path = parts[5] if len(parts) > 5 else ""
                if path.startswith("/dev/zero") or path.startswith("/SYSV"):
                    kind = "shm " + path
                elif path == "":
                    kind = "anon"
                elif path.startswith("["):
                    kind = path
                else:
                    kind = os.path.basename(path) + (" rw" if "w" in parts[1] else "")
                continue
            if parts[0] == "Rss:":
                out[kind][0] += int(parts[1])
            elif parts[0] == "Pss:":
                out[kind][1] += int(parts[1])
            elif parts[0] in ("Private_Clean:", "Private_Dirty:"):
                out[kind][2] += int(parts[1])
    return out


def probe(kind, srv, label):
    pids = scale.serving_pids(kind, srv)
    best = min(pids, key=lambda p: scale.memory_kb(p)[0])
    m = smaps(best)
    tot = [sum(v[i] for v in m.values()) for i in range(3)]
    log("%s %s pid %d: rss %d pss %d private %d" % (kind, label, best, *tot))
    return m, tot


def start_and_probe(kind, work, tag, conf_text, all_names, root):
    srv = scale.make_server(kind, work, tag)
    srv.write_conf(conf_text)
    t0 = time.monotonic()
    srv.start(timeout=120)
    try:
        if all_names and os.environ.get("MEMPROBE_BEFORE"):
            time.sleep(2)
            probe(kind, srv, tag + " before handshakes")
        if all_names:
            scale.verify_all(all_names, root, t0 + 120, srv.running)
        time.sleep(1)
        return probe(kind, srv, tag)
    finally:
        srv.stop()


def run(kind, n, pebble, work):
    conf = scale.nginx_conf if kind == "nginx" else scale.apache_conf
    state = os.path.join(work, "state-" + kind)
    root = pebble.write_root(os.path.join(work, "root-%s.pem" % kind))
    all_names = scale.names(n)
    # issue
    srv = scale.make_server(kind, work, "issue")
    srv.write_conf(conf(pebble, state, n))
    t0 = time.monotonic()
    srv.start(timeout=120)
    res = {}
    try:
        scale.verify_all(all_names, root, t0 + scale.TIMEOUT, srv.running, state=state)
        time.sleep(1)
        res["issued"] = probe(kind, srv, "issued")
    finally:
        srv.stop()
    static = {}
    pem_dir = os.path.join(work, "pem-" + kind)
    os.makedirs(pem_dir, exist_ok=True)
    for name in all_names:
        key_pem, chain_pem = split_bundle(os.path.join(state, "certs", scale.cert_id(name),
                                                       "bundle.pem"))
        kf, cf = os.path.join(pem_dir, name + ".key"), os.path.join(pem_dir, name + ".crt")
        with open(kf, "w") as f:
            f.write(key_pem)
        with open(cf, "w") as f:
            f.write(chain_pem)
        static[name] = (kf, cf)
    res["managed"] = start_and_probe(kind, work, "managed", conf(pebble, state, n),
                                     all_names, root)
    res["static"] = start_and_probe(kind, work, "static", conf(pebble, state, n, static=static),
                                    all_names, root)
    state0 = os.path.join(work, "state0-" + kind)
    res["managed0"] = start_and_probe(kind, work, "managed0", conf(pebble, state0, 0), [], root)
    res["static0"] = start_and_probe(kind, work, "static0", conf(pebble, state0, 0, static={}),
                                     [], root)
    return res


def report(kind, n, res):
    print("== %s, N = %d: KB per certificate (rss / pss / private), per mapping" % (kind, n))
    kinds = set()
    for m, _ in res.values():
        kinds |= set(m)
    rows = []
    for k in sorted(kinds):
        def per(a, b, i):
            return (res[a][0].get(k, [0, 0, 0])[i] - res[b][0].get(k, [0, 0, 0])[i]) / n
        mm = [per("managed", "managed0", i) for i in range(3)]
        ss = [per("static", "static0", i) for i in range(3)]
        md = [per("managed", "static", i) for i in range(3)]
        mi = [per("issued", "static", i) for i in range(3)]
        if max(abs(x) for x in mm + ss + md + mi) < 0.05:
            continue
        rows.append((k, mm, ss, md, mi))
    print("%-32s %-20s %-20s %-20s %-20s" % ("mapping", "managed N - man. 0", "static N - stat. 0",
                                             "managed N - static", "issued N - static"))
    for k, mm, ss, md, mi in rows:
        print("%-32s %-20s %-20s %-20s %-20s" % (k[:32], "%.1f/%.1f/%.1f" % tuple(mm),
                                                 "%.1f/%.1f/%.1f" % tuple(ss),
                                                 "%.1f/%.1f/%.1f" % tuple(md),
                                                 "%.1f/%.1f/%.1f" % tuple(mi)))
    tot = {k: v[1] for k, v in res.items()}
    print("totals rss/pss/private: " + ", ".join("%s %s" % (k, v) for k, v in tot.items()))
    print("per cert managed-static: rss %.1f pss %.1f private %.1f; (managedN-managed0)-(staticN-static0): rss %.1f pss %.1f private %.1f" % (
        *[(tot["managed"][i] - tot["static"][i]) / n for i in range(3)],
        *[((tot["managed"][i] - tot["managed0"][i]) - (tot["static"][i] - tot["static0"][i])) / n
          for i in range(3)]))


def main(argv):
    kinds = ["nginx", "apache"]
    n = 200
    keep = None
    args = list(argv)
    while args:
        a = args.pop(0)
        if a == "--only":
            kinds = [args.pop(0)]
        elif a == "--keep":
            keep = args.pop(0)
        else:
            n = int(a)
    out = {}
    with benchlib.session("ngx-acme-mem-", True) as (work, pebble):
        for kind in kinds:
            out[kind] = run(kind, n, pebble, work)
            if keep:
                import shutil
                shutil.copytree(work, keep + "-" + kind, symlinks=True,
                                ignore_dangling_symlinks=True)
            report(kind, n, out[kind])
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
