"""Our modules beside others on the same server and port (issue 16).

Apache: mod_md and mod_acme_auto in one server, both against pebble.

mod_md manages m.example.test (MDomain, tls-alpn-01 or http-01), our module
a.example.test (AcmeCertificate, the same challenge type) or nothing at all
(loaded without any AcmeCertificate).  Both vhosts are on pebble's tlsPort
(Protocols h2 http/1.1 acme-tls/1), the plain vhost on its httpPort, so
pebble validates both modules' challenges on the same ports.  Every hook
both modules have declines for a connection or request that is not ours,
so mod_md's challenges reach mod_md: its certificate is staged, and served
for m.example.test after the graceful restart mod_md asks for; ours is
served for a.example.test without a restart.  mod_md's hooks (2.6,
mod_md.c md_hooks): all APR_HOOK_MIDDLE; its protocol_propose proposes
acme-tls/1 whenever it is offered, its protocol_switch takes every switch
to acme-tls/1 (the first OK wins), its http-01 hook declines for names that
are not its own.

nginx: a static ssl_certificate server beside a managed default server
(test_nginx_static_server_beside_managed_default)."""

import os
import time

import pytest

from apache_server import MODDIR
from pebble import HTTP_PORT, TLS_PORT, make_ca, make_leaf
from servers import Apache
from tlsutil import is_self_signed, sans, served_cert, wait_acme_cert

ISSUE_TIMEOUT = 60
MD_NAME = "m.example.test"

# mod_md's part: the whole server is mod_md's (MDPortMap: pebble validates
# on its httpPort / tlsPort, which we listen on); its vhost has no
# certificate files, mod_md hands mod_ssl a fallback until its own
MD_CONF = """\
LoadModule md_module @MODDIR@/mod_md.so
LoadModule http2_module @MODDIR@/mod_http2.so
MDCertificateAuthority @DIRURL@
MDCACertificateFile @CA@
MDCertificateAgreement accepted
MDContactEmail admin@example.test
MDStoreDir @MDSTORE@
MDPortMap http:@HTTP@ https:@TLS@
MDCAChallenges @CHALLENGE@
MDRetryDelay 1s
MDomain @MDNAME@
Protocols h2 http/1.1 acme-tls/1

<VirtualHost 127.0.0.1:@TLS@>
    ServerName @MDNAME@
    SSLEngine on
    Protocols h2 http/1.1 acme-tls/1
</VirtualHost>
"""

OURS = """
@ISSUER@
<VirtualHost 127.0.0.1:@TLS@>
    ServerName a.example.test
    SSLEngine on
    Protocols h2 http/1.1 acme-tls/1
    AcmeCertificate pebble
</VirtualHost>
"""

PLAIN = """
<VirtualHost 127.0.0.1:@HTTP@>
    ServerName a.example.test
    ServerAlias @MDNAME@
    <Location /acme-status>
        SetHandler acme-status
    </Location>
</VirtualHost>
"""

MD_STAGED = "The Managed Domain %s has been setup" % MD_NAME

CASES = [("tls-alpn-01", True), ("tls-alpn-01", False), ("http-01", True)]


@pytest.mark.parametrize("challenge,ours", CASES,
                         ids=["%s-%s" % (c, "ours" if o else "no-acmecertificate")
                              for c, o in CASES])
def test_mod_md_and_mod_acme_auto(apache_factory, challenge, ours, pebble, root_file,
                                  state_dir, workdir):
    srv = Apache(apache_factory)
    srv.use_ports(TLS_PORT, HTTP_PORT)
    md_store = os.path.join(workdir, "md")
    body = MD_CONF + (OURS.replace("@ISSUER@", srv.issuer_block(
        pebble, state_dir, {"challenge": challenge})) if ours else "") + PLAIN
    srv.raw.write_conf(body, MODDIR=MODDIR, DIRURL=pebble.directory_url,
                       CA=pebble.ca_pem, MDSTORE=md_store, MDNAME=MD_NAME,
                       CHALLENGE=challenge, TLS=TLS_PORT, HTTP=HTTP_PORT)
    srv.start()

    if ours:
        cert = wait_acme_cert(TLS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                              proc_alive=srv.running)
        assert sans(cert) == ["a.example.test"] and not is_self_signed(cert)
        assert srv.status_cert(host="a.example.test")["last_error"] is None

    # mod_md: its validation went through its own hooks, the certificate
    # is staged; it is served after the graceful restart mod_md asks for
    staged = os.path.join(md_store, "staging", MD_NAME, "pubcert.pem")
    deadline = time.monotonic() + ISSUE_TIMEOUT
    while MD_STAGED not in srv.error_log():
        log = srv.error_log()
        # mod_md retries for ever: its first failed validation is the answer
        assert "challenge 'invalid' for %s" % MD_NAME not in log, log[-3000:]
        assert time.monotonic() < deadline, "no certificate from mod_md"
        time.sleep(0.2)
    assert os.path.exists(staged), os.listdir(md_store)
    assert "Missing acmeValidationV1" not in srv.error_log()
    srv.reload()
    md_cert = served_cert(TLS_PORT, MD_NAME, cafile=root_file)
    assert sans(md_cert) == [MD_NAME]
    assert os.path.exists(os.path.join(md_store, "domains", MD_NAME, "pubcert.pem"))

    log = srv.error_log()
    if ours:
        answered = {"tls-alpn-01": "mod_acme_auto: answering tls-alpn-01 challenge for",
                    "http-01": "mod_acme_auto: answering http-01 challenge"}[challenge]
        assert answered in log
        # ours still served after the restart, mod_md's from its store
        assert served_cert(TLS_PORT, "a.example.test", cafile=root_file).serial_number \
            == cert.serial_number
    else:
        assert "mod_acme_auto: answering" not in log
    assert not srv.problems(), srv.problems()


# nginx: the managed server is the listen's default server, a static server
# (its own ssl_certificate, not ours) shares the port.  Our ClientHello
# callback runs on the default server's context for every connection; the
# ALPN and certificate callbacks are only on managed servers' contexts.
NGINX_CONF = """
@ISSUER@
    server {
        listen 127.0.0.1:@TLS@ ssl http2 default_server;
        server_name a.example.test b.example.test;
        acme_certificate pebble;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / { return 200 "hello from $server_name\\n"; }
    }
    server {
        listen 127.0.0.1:@TLS@ ssl http2;
        server_name static.example.test;
        ssl_certificate @STATIC_CRT@;
        ssl_certificate_key @STATIC_KEY@;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / { return 200 "static\\n"; }
    }
    server {
        listen 127.0.0.1:@STATUS@;
        server_name a.example.test;
        location = /acme-status { acme_status; }
    }
"""


@pytest.mark.parametrize("server", ["nginx"], indirect=True)
def test_nginx_static_server_beside_managed_default(server, pebble, root_file, state_dir,
                                                    workdir):
    """A client offering acme-tls/1 for the static server's name is never
    ours, also while our challenges are pending on the port (probed from a
    proxy in front of the validation, test_tlsalpn.ProbingProxy): alone, the
    handshake fails in nginx's own ALPN callback, as without our module
    (our callbacks log nothing for the name); among other protocols, the
    static server's certificate and http/1.1.  A name of no server falls to
    the managed default server: ours refuses it."""
    from test_tlsalpn import MIXED, NAMES, PROXY_HOST, STATUS_PORT, ProbingProxy, \
        _alpn, _point_names_at, _refused
    ca_key, ca_crt = make_ca(workdir, "static-ca")
    key, crt = make_leaf(workdir, ca_key, ca_crt, "static", ["DNS:static.example.test"],
                         cn="static.example.test")
    proxy = ProbingProxy(NAMES, other="static.example.test")
    try:
        _point_names_at(NAMES, PROXY_HOST)
        server.use_ports(TLS_PORT, STATUS_PORT)
        server.raw.write_conf(NGINX_CONF.replace("@ISSUER@", server.issuer_block(
            pebble, state_dir, {"challenge": "tls-alpn-01"})),
            TLS=TLS_PORT, STATUS=STATUS_PORT, STATIC_CRT=crt, STATIC_KEY=key)
        server.start()
        cert = wait_acme_cert(TLS_PORT, "a.example.test", root_file, ISSUE_TIMEOUT,
                              proc_alive=server.running)
        assert sans(cert) == NAMES
        # while a challenge of ours was pending (the probes run before the
        # validation connection goes on): the managed names got the
        # challenge certificate, the static name nothing of ours
        proxy.check_all_answered("nginx")
        static = proxy.other_results()
        assert static and all(a is None and c is None for _, _, a, c, _ in static), static
        for _, _, alpn, c in proxy.mixed_results("static.example.test"):
            assert alpn == "http/1.1" and sans(c) == ["static.example.test"], (alpn, c)
        # and now, with nothing pending
        assert _refused(TLS_PORT, "static.example.test", ["acme-tls/1"])
        for protos in (list(MIXED), ["h2", "acme-tls/1"]):
            alpn, leaf = _alpn(TLS_PORT, "static.example.test", protos)
            assert alpn == protos[-1 if protos[0] == "acme-tls/1" else 0]
            assert sans(leaf) == ["static.example.test"]
        assert _refused(TLS_PORT, "nothing.example.test", ["acme-tls/1"])
        log = server.error_log()
        assert 'tls-alpn-01 handshake for "nothing.example.test" refused' in log
        assert "static.example.test" not in log, \
            [l for l in log.splitlines() if "static.example.test" in l]
        assert not server.problems(), server.problems()
    finally:
        proxy.close()
