"""Apache: mod_md and mod_acme_auto in one server, both against pebble.

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
are not its own."""

import os
import time

import pytest

from apache_server import MODDIR
from pebble import HTTP_PORT, TLS_PORT
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
