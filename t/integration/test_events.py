"""nginx and Apache, issue 12 item 3: the event program (acme_event_command /
AcmeEventCommand) runs on every change of a certificate, as the worker /
child user, without a shell, with "EVENT ID NAMES..." and the ACME_*
environment: issued, installed, renewed (20-second pebble certificates
renewed at 80 % left), failed (a CA refusing one name through ca_proxy.py;
one event although the order fails again and again), expiring (a warning
window longer than the lifetime, acme_expiry_warning / AcmeExpiryWarning,
also the status' "expiring").  A hanging program is killed at its timeout
with a log line while orders go on; a relative or non-executable program
fails the configuration test with the directive and file:line."""

import os
import re
import stat

from ca_proxy import CaProxy, Problem, cert_id
from tlsutil import wait_for

ISSUE_TIMEOUT = 60
A = ["a.example.test", "b.example.test"]
FAIL = "f.example.test"

# one line per run: argv, then the environment (tab-separated), then the
# names of every variable it got
PROGRAM = """#!/bin/sh
printf '%s\\t%s\\t%s\\t%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n' "$*" "$ACME_EVENT" "$ACME_ID" \\
    "$ACME_NAMES" "$ACME_SERIAL" "$ACME_NOT_AFTER" "$ACME_ISSUER" "$ACME_LAST_ERROR" \\
    "$(env | cut -d= -f1 | sort | tr '\\n' ,)" >> {rec}
{tail}
"""
FIELDS = ("argv", "event", "id", "names", "serial", "not_after", "issuer", "last_error",
          "env")


def _program(workdir, tail="exit 0"):
    """An executable event program and the file it appends to (both usable
    by the worker / child user)."""
    rec = os.path.join(workdir, "events.txt")
    open(rec, "w").close()
    os.chmod(rec, 0o666)
    path = os.path.join(workdir, "event.sh")
    with open(path, "w") as f:
        f.write(PROGRAM.format(rec=rec, tail=tail))
    os.chmod(path, stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    return path, rec


def _runs(rec):
    with open(rec) as f:
        return [dict(zip(FIELDS, line.rstrip("\n").split("\t"))) for line in f if line.strip()]


def _event_line(server, prog, timeout=None):
    if server.kind == "nginx":
        return "acme_event_command %s%s;" % (prog, (" timeout=%ds" % timeout) if timeout else "")
    return "    AcmeEventCommand %s%s" % (prog, (" %d" % timeout) if timeout else "")


def _warning_line(server, seconds):
    if server.kind == "nginx":
        return "acme_expiry_warning %ds;" % seconds
    return "    AcmeExpiryWarning %d" % seconds


def test_events(server, pebble_factory, state_dir, workdir):
    p = pebble_factory(validity=20, nonce_reject=0)
    proxy = CaProxy(p)
    proxy.problems[("/order-plz", FAIL)] = Problem(403, "unauthorized", "no " + FAIL + " here")
    proxy.start()
    prog, rec = _program(workdir)
    a, f = cert_id(A[0]), cert_id(FAIL)
    try:
        server.write_certs(proxy, state_dir, [(A, ""), ([FAIL], "")],
                           # renewed 4 s after issuance (jitter up to 1 s earlier)
                           issuer=[{"renew_before_expiry": "80%", "retry_delay": "1s"},
                                   _event_line(server, prog), _warning_line(server, 3600)])
        server.start()

        def seen(*want):
            runs = _runs(rec)
            return runs if all(any(r["event"] == e and r["id"] == i for r in runs)
                               for e, i in want) else None
        runs = wait_for(lambda: seen(("issued", a), ("installed", a), ("renewed", a),
                                     ("failed", f), ("expiring", a)),
                        ISSUE_TIMEOUT, "issued, installed, renewed, failed, expiring")
        # the renewed one is installed too
        wait_for(lambda: [r["event"] for r in _runs(rec) if r["id"] == a].count("installed") >= 2,
                 20, "the renewed certificate installed")
        # f keeps failing (1 s backoff), one "failed" in the hour
        wait_for(lambda: server.status_cert(f)["consecutive_failures"] >= 2, 30,
                 "a second failed order")
        runs = _runs(rec)
    finally:
        proxy.stop()

    for r in runs:
        assert r["argv"].split(" ")[:2] == [r["event"], r["id"]], r
        assert r["issuer"] == "pebble", r
        # nothing of the server's environment: PATH and ours (and what
        # the shell sets itself)
        names = [n for n in r["env"].split(",") if n not in ("", "PWD", "OLDPWD", "SHLVL", "_")]
        assert names == sorted(
            ["PATH", "ACME_EVENT", "ACME_ID", "ACME_NAMES", "ACME_SERIAL",
             "ACME_NOT_AFTER", "ACME_ISSUER", "ACME_DIRECTORY", "ACME_LAST_ERROR"]), r
    of_a = [r for r in runs if r["id"] == a]
    for r in of_a:
        assert r["argv"] == " ".join([r["event"], a] + A), r
        assert r["names"] == " ".join(A), r
        assert re.match(r"^[0-9A-Fa-f]+$", r["serial"]) and r["not_after"].endswith("Z"), r
    issued = [r for r in of_a if r["event"] == "issued"]
    renewed = [r for r in of_a if r["event"] == "renewed"]
    assert len(issued) == 1 and renewed, of_a
    assert renewed[0]["serial"] != issued[0]["serial"]
    # installed after it, for the certificate issued just before (same serial)
    events = [r["event"] for r in of_a]
    first_inst = of_a[events.index("installed")]
    assert events.index("issued") < events.index("installed"), events
    assert first_inst["serial"] == issued[0]["serial"], of_a

    failed = [r for r in runs if r["id"] == f]
    assert [r["event"] for r in failed] == ["failed"], failed
    assert failed[0]["argv"] == "failed %s %s" % (f, FAIL), failed
    assert "no %s here" % FAIL in failed[0]["last_error"], failed
    assert failed[0]["serial"] == "", failed

    # the warning window (3600 s > the lifetime): the status says so too
    assert server.status_cert(a)["expiring"] is True
    assert not server.problems(), server.problems()


def test_event_program_hangs(server, pebble, state_dir, workdir):
    """A program that never ends is killed after timeout=1s / 1, with a log
    line; its events wait their turn and both orders go on.  The command is
    the server-wide one (nginx http{}, Apache server config), which the
    issuer without its own takes."""
    prog, rec = _program(workdir, tail="echo 'still busy' >&2\nexec sleep 300")
    server.write_managed(pebble, state_dir, names=["a.example.test"],
                         more=[server.vhost(["c.example.test"]),
                               _event_line(server, prog, timeout=1).strip()])
    server.start()
    for name in ("a.example.test", "c.example.test"):
        wait_for(lambda: server.status_cert(cert_id(name))["state"] == "valid", ISSUE_TIMEOUT,
                 "%s issued" % name)
    wait_for(lambda: len(re.findall(r"event command \w+ \S+: %s killed after 1 s"
                                    % re.escape(prog), server.error_log())) >= 2,
             30, "two runs killed after 1 s")
    assert "event command: still busy" in server.error_log()
    # the events wait their turn, one program at a time
    wait_for(lambda: {(r["event"], r["id"]) for r in _runs(rec)} >= {
        ("issued", cert_id("a.example.test")), ("issued", cert_id("c.example.test"))},
             30, "both issued events run")
    assert not server.problems(), server.problems()


def test_event_command_config_errors(server, pebble, state_dir, workdir):
    """A relative path, or a file that is not executable: the configuration
    test fails naming the directive and file:line."""
    plain = os.path.join(workdir, "not-executable.sh")
    with open(plain, "w") as f:
        f.write("#!/bin/sh\n")
    os.chmod(plain, 0o644)
    directive = "acme_event_command" if server.kind == "nginx" else "AcmeEventCommand"
    for prog, words in (("bin/event.sh", "is not an absolute path"),
                        (plain, "is not an executable file")):
        server.write_managed(pebble, state_dir, issuer=[_event_line(server, prog)])
        rc, out = server.test_config()
        assert rc != 0, out
        assert directive in out and words in out, out
        line = server.conf_line(directive)
        conf = re.escape(server.raw.conf_path)
        assert re.search(conf + r":%d\b" % line, out) \
            or re.search(r"line %d of " % line + conf, out), out
