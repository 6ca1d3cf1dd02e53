"""nginx -t: configuration errors name the directive and file:line, and
testing a configuration writes nothing."""

import os
import re

import pytest

ISSUER = """
    acme_issuer pebble {                             # ISSUER_START
        uri https://127.0.0.1:14000/dir;
        contact admin@example.test;
        state_path @STATE@;                          # STATE_LINE
        accept_terms_of_service;
        ssl_trusted_certificate @CA@;
    }                                                # ISSUER_END
"""

SERVER = """
    server {                                         # SERVER_START
        listen 127.0.0.1:8443 ssl;
        server_name a.example.test;
        acme_certificate pebble;                     # CERT_LINE
    }                                                # SERVER_END
"""

# name -> (http body, directives of which one must be named, line markers:
#          a single marker or a (start, end) range the reported line is in)
CASES = {
    "unknown_issuer": (
        ISSUER + SERVER.replace("acme_certificate pebble;", "acme_certificate nosuch;"),
        ["acme_certificate"], "CERT_LINE"),
    "missing_uri": (
        ISSUER.replace("uri https://127.0.0.1:14000/dir;", "") + SERVER,
        ["uri"], ("ISSUER_START", "ISSUER_END")),
    "no_listen_ssl": (
        ISSUER + SERVER.replace("listen 127.0.0.1:8443 ssl;", "listen 127.0.0.1:8443;"),
        ["acme_certificate", "listen"], ("SERVER_START", "SERVER_END")),
    "regex_server_name": (
        ISSUER + SERVER.replace("server_name a.example.test;",
                                r"server_name ~^a\.example\.test$;"),
        ["acme_certificate", "server_name"], ("SERVER_START", "SERVER_END")),
    "wildcard_without_dns01": (
        ISSUER + SERVER.replace("server_name a.example.test;",
                                "server_name *.example.test;"),
        ["acme_certificate", "server_name"], ("SERVER_START", "SERVER_END")),
    "no_names": (
        ISSUER + SERVER.replace("server_name a.example.test;", 'server_name "";'),
        ["acme_certificate", "server_name"], ("SERVER_START", "SERVER_END")),
    "bad_key_spec": (
        ISSUER + SERVER.replace("acme_certificate pebble;",
                                "acme_certificate pebble key=dsa:1024;"),
        ["acme_certificate"], "CERT_LINE"),
    "bad_rsa_size": (
        ISSUER + SERVER.replace("acme_certificate pebble;",
                                "acme_certificate pebble key=rsa:1024;"),
        ["acme_certificate"], "CERT_LINE"),
    "unwritable_state_path": (
        ISSUER.replace("@STATE@", "@AFILE@/state") + SERVER,
        ["state_path"], ("ISSUER_START", "ISSUER_END")),
    # the store is opened without following a symlink: said at -t already
    "symlinked_state_path": (
        ISSUER.replace("@STATE@", "@ALINK@") + SERVER,
        ["state_path"], ("ISSUER_START", "ISSUER_END")),
}


def _reported_lines(out, conf):
    return [int(m) for m in re.findall(re.escape(conf) + r":(\d+)", out)]


def _snapshot(root, skip):
    """Every path under root except nginx's own prefix dir skip (nginx -t
    itself opens its logs and creates its temp dirs there)."""
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = [n for n in dirs if os.path.join(d, n) != skip]
        for n in dirs + files:
            out.append(os.path.relpath(os.path.join(d, n), root))
    return sorted(out)


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_error(case, nginx_factory, workdir, pebble_factory):
    body, directives, where = CASES[case]
    p = pebble_factory(start=False)          # only for its CA file
    afile = os.path.join(workdir, "afile")
    with open(afile, "w") as f:
        f.write("a regular file, not a directory\n")
    alink = os.path.join(workdir, "alink")
    os.mkdir(os.path.join(workdir, "areal"))
    os.symlink(os.path.join(workdir, "areal"), alink)
    state = os.path.join(workdir, "state", "pebble")
    srv = nginx_factory()
    srv.write_conf(body, STATE=state, CA=p.ca_pem, AFILE=afile, ALINK=alink)
    before = _snapshot(workdir, srv.prefix)

    rc, out = srv.test_config()

    assert rc != 0, out
    assert "[emerg]" in out, out
    assert any(re.search(r"\b%s\b" % re.escape(d), out) for d in directives), \
        "none of %s named in: %s" % (directives, out)
    lines = _reported_lines(out, srv.conf_path)
    assert lines, "no %s:LINE in: %s" % (srv.conf_path, out)
    if isinstance(where, tuple):
        lo, hi = srv.conf_line(where[0]), srv.conf_line(where[1])
        assert any(lo <= n <= hi for n in lines), (lines, lo, hi, out)
    else:
        assert srv.conf_line(where) in lines, (lines, srv.conf_line(where), out)
    assert _snapshot(workdir, srv.prefix) == before, "nginx -t wrote files"
    assert not os.path.exists(os.path.join(workdir, "state"))


def test_valid_config_writes_nothing(nginx_factory, workdir, pebble_factory):
    p = pebble_factory(start=False)
    state = os.path.join(workdir, "state", "pebble")
    srv = nginx_factory()
    srv.write_conf(ISSUER + SERVER + """
    server { listen 127.0.0.1:5002; server_name a.example.test;
             location = /acme-status { acme_status; } }
""", STATE=state, CA=p.ca_pem)
    before = _snapshot(workdir, srv.prefix)
    rc, out = srv.test_config()
    assert rc == 0, out
    assert "test is successful" in out
    assert _snapshot(workdir, srv.prefix) == before, "nginx -t wrote files"
    assert not os.path.exists(state)


def test_names_outside_server_name_are_warned_about(nginx_factory, workdir, pebble_factory):
    """An explicit acme_certificate name that no server_name of the server
    matches would be certified but never reached by SNI: a [warn] naming the
    line; names covered exactly, by "*.suffix" or ".suffix", or IP literals
    are not warned about."""
    p = pebble_factory(start=False)
    state = os.path.join(workdir, "state", "pebble")
    srv = nginx_factory()
    srv.write_conf(ISSUER + """
    server {
        listen 127.0.0.1:8443 ssl;
        server_name a.example.test *.w.example.test .d.example.test;
        acme_certificate pebble A.example.test x.w.example.test d.example.test
                         y.d.example.test 127.0.0.1;    # GOOD_LINE
        acme_certificate pebble c.example.test key=rsa:2048;   # BAD_LINE
    }
""", STATE=state, CA=p.ca_pem)
    rc, out = srv.test_config()
    assert rc == 0, out
    warns = [l for l in out.splitlines() if "[warn]" in l and "server_name" in l]
    assert len(warns) == 1, out
    assert '"c.example.test"' in warns[0], warns
    assert _reported_lines(warns[0], srv.conf_path) == [srv.conf_line("BAD_LINE")], warns


def test_plain_http_uri_is_warned_about(nginx_factory, workdir, pebble_factory):
    """RFC 8555 section 6.1: ACME runs over HTTPS; an http:// uri still loads
    (a lab CA) but nginx -t warns, naming the line."""
    p = pebble_factory(start=False)
    state = os.path.join(workdir, "state", "pebble")
    srv = nginx_factory()
    srv.write_conf(ISSUER.replace("uri https://", "uri http://") + SERVER,
                   STATE=state, CA=p.ca_pem)
    rc, out = srv.test_config()
    assert rc == 0, out
    warns = [l for l in out.splitlines() if "[warn]" in l and "plain HTTP" in l]
    assert len(warns) == 1, out
    assert _reported_lines(warns[0], srv.conf_path), warns
