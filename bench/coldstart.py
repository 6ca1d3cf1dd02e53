#!/usr/bin/python3
"""Cold start: nginx and Apache with our modules, a fresh store (no account,
no certificate) and 2 names (a.example.test, b.example.test, the test
harness's managed server / vhost, t/integration/servers.py), against Debian's
pebble on loopback (PEBBLE_VA_NOSLEEP).  Each run measures "server start ->
certificate served": from just before the server is started until a full TLS
handshake for a.example.test presents a chain that verifies against pebble's
root (polled every 10 ms).  Median of BENCH_RUNS (default 5) runs per server,
the runs of all servers alternating; one pebble for all runs (each run has a
new account key, so nothing is reused at the CA).

mod_md (issue 9's comparison), when Debian's mod_md.so is present: the same
Debian apache2 (the harness's ApacheServer, event MPM, 2 children) WITHOUT
our module, with mod_md + mod_ssl (mod_watchdog is compiled into Debian's
apache2), `MDomain a.example.test b.example.test` on an HTTPS vhost (the
harness's HTTPS port) and a plain HTTP vhost on pebble's httpPort
(`MDPortMap http:<httpPort> https:<HTTPS port>`, `MDCAChallenges http-01`,
our modules' default), `MDPrivateKeys secp256r1` (our modules' default key
type; mod_md's is RSA 2048), the same pebble (`MDCertificateAuthority` = its
directory URL, `MDCACertificateFile` = the CA of pebble's API, what our
modules get as AcmeTrustedCA / acme_trusted_ca), `MDCertificateAgreement
accepted`, a fresh `MDStoreDir` each run (so a new account: mod_md 2.6's
account key is RSA 3072, not configurable; ours is ECDSA P-256).

mod_md cannot serve what it obtains before a (graceful) restart, so its
figure is NOT "served": "mod_md obtain" is from just before the server is
started until the new chain is in the store's staging area
(MDStoreDir/staging/a.example.test/pubcert.secp256r1.pem once the order is
done; mod_md writes it in place, no rename, so the poll, every 10 ms, takes
it when it ends with a whole certificate).  Logged per run beside
it, not in the last line: when MDMessageCmd was called with "renewed" (mod_md's
own "obtained, restart now" signal) and, after a graceful restart sent at
that moment, when a handshake first verifies against pebble's root (start ->
served, the figure comparable to nginx's and Apache's).  After the timing,
the staged chain must name both names and verify against pebble's root.
The seconds mod_md spent generating its account key are logged too (from
its debug lines).

The last line is "cold start nginx = X s, apache = Y s, mod_md obtain = Z s"
("mod_md obtain = n/a" when mod_md.so is missing; the reason is logged).
Environment: BENCH_RUNS; ACME_NGINX_MODULE / ACME_APACHE_MODULE (the
harness's) to measure other builds; ACME_MOD_MD: another mod_md.so (default
/usr/lib/apache2/modules/mod_md.so).
"""

import os
import re
import statistics
import subprocess
import sys
import time

import benchlib
from benchlib import log

import servers  # noqa: E402
from apache_server import MODDIR, ApacheServer  # noqa: E402
from nginx_server import NginxServer  # noqa: E402
from pebble import HTTP_PORT  # noqa: E402
from serverlib import substitute  # noqa: E402
from tlsutil import served_cert  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
TIMEOUT = 60.0
MOD_MD = os.environ.get("ACME_MOD_MD") or os.path.join(MODDIR, "mod_md.so")

MOD_MD_BODY = """\
LoadModule md_module @MOD_MD@
@WATCHDOG@
MDCertificateAuthority @DIRURL@
MDCACertificateFile @CA@
MDCertificateAgreement accepted
MDContactEmail admin@example.test
MDStoreDir @STORE@
MDPortMap http:@HTTP_PORT@ https:@HTTPS_PORT@
MDCAChallenges http-01
MDPrivateKeys secp256r1
MDMessageCmd @MSGCMD@
MDomain a.example.test b.example.test

<VirtualHost 127.0.0.1:@HTTPS_PORT@>
    ServerName a.example.test
    ServerAlias b.example.test
    SSLEngine on
</VirtualHost>

<VirtualHost 127.0.0.1:@HTTP_PORT@>
    ServerName a.example.test
    ServerAlias b.example.test
</VirtualHost>
"""

# MDMessageCmd: mod_md runs it (in the child, as www-data) with the reason
# and the domain's name; one line per call
MSG_SCRIPT = """\
#!/bin/sh
echo "$*" >> "%s"
"""


def make_server(kind, d):
    if kind == "nginx":
        return servers.make("nginx", nginx_factory=lambda name="nginx", **kw:
                            NginxServer(os.path.join(d, name), **kw))
    return servers.make("apache", apache_factory=lambda name="apache", **kw:
                        ApacheServer(os.path.join(d, name), **kw))


def wait_served(srv, t0, what, root, deadline):
    """Seconds from t0 until a handshake for a.example.test verifies against
    root (polled every 10 ms)."""
    last = None
    while True:
        try:
            served_cert(servers.HTTPS_PORT, "a.example.test", cafile=root, timeout=2)
            return time.monotonic() - t0
        except Exception as e:       # the placeholder / fallback: not yet
            last = e
        if time.monotonic() > deadline or not srv.running():
            raise RuntimeError("%s: no certificate after %.0f s (last: %r)"
                               % (what, time.monotonic() - t0, last))
        time.sleep(0.01)


def one_run(kind, work, pebble, root, i):
    d = os.path.join(work, "%s-%d" % (kind, i))
    os.makedirs(d)
    state = os.path.join(d, "state", "pebble")
    srv = make_server(kind, d)
    srv.write_managed(pebble, state)
    try:
        t0 = time.monotonic()
        srv.start()
        return wait_served(srv, t0, "%s run %d" % (kind, i), root, t0 + TIMEOUT)
    finally:
        srv.stop()


def mod_md_missing():
    """Why mod_md cannot be measured here, or None."""
    if not os.path.isfile(MOD_MD):
        return "%s not found (Debian's apache2-bin ships it)" % MOD_MD
    return None


def mod_md_conf(srv, pebble, store, msgcmd):
    watchdog = os.path.join(MODDIR, "mod_watchdog.so")
    return srv.render(MOD_MD_BODY, MOD_MD=MOD_MD, DIRURL=pebble.directory_url,
                      CA=pebble.ca_pem, STORE=store, MSGCMD=msgcmd,
                      HTTP_PORT=HTTP_PORT, HTTPS_PORT=srv.https_port,
                      # Debian's apache2 has it compiled in (apache2 -l)
                      WATCHDOG=("LoadModule watchdog_module %s" % watchdog)
                      if os.path.isfile(watchdog) else "")


def mod_md_run(work, pebble, root, i):
    """(start -> staged, start -> "renewed" message or None, start -> served
    after a graceful restart at that message or None, seconds of its account
    key generation or None) of one mod_md run."""
    d = os.path.join(work, "mod_md-%d" % i)
    os.makedirs(d)
    srv = ApacheServer(os.path.join(d, "apache"), module=None,
                       loglevel="info md:debug")
    store = os.path.join(srv.dir, "md")
    # the MDMessageCmd script writes where the www-data child can
    msgdir = os.path.join(d, "msg")
    os.makedirs(msgdir)
    os.chmod(d, 0o755)
    os.chmod(msgdir, 0o777)
    msgfile = os.path.join(msgdir, "messages")
    msgcmd = os.path.join(d, "msg.sh")
    with open(msgcmd, "w") as f:
        f.write(MSG_SCRIPT % msgfile)
    os.chmod(msgcmd, 0o755)
    with open(srv.conf_path, "w") as f:
        f.write(mod_md_conf(srv, pebble, store, msgcmd))
    # MDPrivateKeys secp256r1: pubcert.secp256r1.pem (RSA: pubcert.pem)
    staged_path = os.path.join(store, "staging", "a.example.test", "pubcert.secp256r1.pem")
    what = "mod_md run %d" % i

    def renewed():
        try:
            with open(msgfile) as f:
                return any(line.split()[:1] == ["renewed"] for line in f)
        except FileNotFoundError:
            return False

    try:
        t0 = time.monotonic()
        srv.start()
        deadline = t0 + TIMEOUT
        staged = t_renewed = None
        while staged is None or t_renewed is None:
            if staged is None:
                chain = chain_written(staged_path)
                if chain is not None:
                    staged = time.monotonic() - t0
            if t_renewed is None and renewed():
                t_renewed = time.monotonic() - t0
            if staged is None and (time.monotonic() > deadline or not srv.running()):
                raise RuntimeError("%s: nothing staged after %.0f s:\n%s"
                                   % (what, time.monotonic() - t0, srv.error_log()[-3000:]))
            if staged is not None and time.monotonic() > t0 + staged + 10:
                log("  %s: no \"renewed\" message 10 s after staging" % what)
                break
            time.sleep(0.01)
        served = None
        if t_renewed is not None:
            # what an operator's MDMessageCmd would do: a graceful restart
            try:
                srv.graceful()
                served = wait_served(srv, t0, what, root, time.monotonic() + TIMEOUT)
            except RuntimeError as e:
                log("  %s: not served after the graceful restart: %s" % (what, e))
        # a copy: the graceful restart moved the staged set into domains/
        with open(os.path.join(d, "staged.pem"), "wb") as f:
            f.write(chain)
        check_staged(os.path.join(d, "staged.pem"), root, what)
        return staged, t_renewed, served, account_key_seconds(srv.error_log())
    finally:
        srv.stop()


def account_key_seconds(error_log):
    """Seconds mod_md spent generating its account key (its debug lines
    "create new account" and "created new account key"), or None."""
    def at(needle):
        m = re.search(r"^\[\w+ \w+ \d+ (\d+):(\d+):([\d.]+) \d+\][^\n]*%s"
                      % re.escape(needle), error_log, re.M)
        return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else None
    a, b = at(": create new account"), at(": created new account key")
    return b - a if a is not None and b is not None and b >= a else None


def chain_written(path):
    """The staged chain file's text once it ends with a whole certificate,
    else None."""
    try:
        with open(path, "rb") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    return text if text.rstrip().endswith(b"-----END CERTIFICATE-----") else None


def check_staged(path, root, what):
    """The staged chain names both names and verifies against pebble's root
    (after the timing: a wrong file must not pass as an obtained one)."""
    r = subprocess.run(["openssl", "verify", "-CAfile", root, "-untrusted", path, path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    s = subprocess.run(["openssl", "x509", "-in", path, "-noout", "-ext", "subjectAltName"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    sans = s.stdout.decode(errors="replace")
    if r.returncode != 0 or "a.example.test" not in sans or "b.example.test" not in sans:
        raise RuntimeError("%s: staged %s does not verify or lacks a name: %s %s"
                           % (what, path, r.stdout.decode(errors="replace"), sans))


def fmt(xs):
    return " ".join("n/a" if t is None else "%.3f" % t for t in xs)


def main():
    times = {"nginx": [], "apache": []}
    md_missing = mod_md_missing()
    md = {"staged": [], "renewed": [], "served": [], "account key": []}
    if md_missing:
        log("mod_md not measured: %s" % md_missing)
    with benchlib.session("coldstart-", True) as (work, pebble):
        root = pebble.write_root(os.path.join(work, "root.pem"))
        for i in range(RUNS):
            for kind in ("nginx", "apache"):
                t = one_run(kind, work, pebble, root, i)
                times[kind].append(t)
                log("  run %d %-6s %.3f s" % (i + 1, kind, t))
            if not md_missing:
                staged, t_renewed, served, acct = mod_md_run(work, pebble, root, i)
                md["staged"].append(staged)
                md["renewed"].append(t_renewed)
                md["served"].append(served)
                md["account key"].append(acct)
                log("  run %d mod_md staged %.3f s, \"renewed\" message %s, "
                    "served after a graceful restart %s (its account key: %s)"
                    % (i + 1, staged, fmt([t_renewed]) + (" s" if t_renewed else ""),
                       fmt([served]) + (" s" if served else ""),
                       fmt([acct]) + (" s" if acct else "")))
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in times.items():
        log("%s: %s" % (k, fmt(v)))
    if md_missing:
        md_text = "n/a"
    else:
        for k, v in md.items():
            log("mod_md %s: %s" % (k, fmt(v)))
        for k in ("renewed", "served", "account key"):
            got = [t for t in md[k] if t is not None]
            if got:
                log("mod_md %s median of %d: %.2f s" % (k, len(got), statistics.median(got)))
        md_text = "%.2f s" % statistics.median(md["staged"])
    print("cold start nginx = %.2f s, apache = %.2f s, mod_md obtain = %s"
          % (med["nginx"], med["apache"], md_text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
