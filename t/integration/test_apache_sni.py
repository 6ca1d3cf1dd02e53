"""Apache (mod_acme_auto): two managed vhosts on one listener (SNI), with
different key types, each served its own certificate by its own SSL_CTX's
callback; plus a static (unmanaged) vhost on the same listener."""

import os
import subprocess

from apache_server import (HTTPS_PORT, apache_factory,  # noqa: F401 (fixture)
                           get_status, status_cert)
from tlsutil import key_desc, sans, served_cert, wait_acme_cert, wait_for

BODY = """
<AcmeIssuer pebble>
    AcmeDirectory @DIRURL@
    AcmeContact admin@example.test
    AcmeTermsOfService agreed
    AcmeTrustedCA @CA@
    AcmeStateDir @STATE@
</AcmeIssuer>
<VirtualHost 127.0.0.1:@HTTPS_PORT@>
    ServerName a.example.test
    SSLEngine on
    AcmeCertificate pebble
</VirtualHost>
<VirtualHost 127.0.0.1:@HTTPS_PORT@>
    ServerName c.example.test
    ServerAlias d.example.test
    SSLEngine on
    AcmeCertificate pebble c.example.test d.example.test key=rsa:2048
</VirtualHost>
<VirtualHost 127.0.0.1:@HTTPS_PORT@>
    ServerName static.example.test
    SSLEngine on
    SSLCertificateFile @STATIC_CRT@
    SSLCertificateKeyFile @STATIC_KEY@
</VirtualHost>
<VirtualHost 127.0.0.1:@HTTP_PORT@>
    ServerName a.example.test
    ServerAlias c.example.test d.example.test
    <Location /acme-status>
        SetHandler acme-status
    </Location>
</VirtualHost>
"""


def test_two_managed_vhosts_and_a_static_one(apache_factory, pebble, root_file, state_dir,
                                              workdir):
    key = os.path.join(workdir, "static.key")
    crt = os.path.join(workdir, "static.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
                    "-days", "2", "-subj", "/CN=static.example.test",
                    "-addext", "subjectAltName=DNS:static.example.test"],
                   check=True, capture_output=True, timeout=30)
    srv = apache_factory()
    srv.write_conf(BODY, DIRURL=pebble.directory_url, CA=pebble.ca_pem, STATE=state_dir,
                   STATIC_CRT=crt, STATIC_KEY=key)
    rc, out = srv.test_config()
    assert rc == 0, out
    srv.start()

    a = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, 60, proc_alive=srv.running)
    c = wait_acme_cert(HTTPS_PORT, "c.example.test", root_file, 60, proc_alive=srv.running)
    d = served_cert(HTTPS_PORT, "d.example.test", cafile=root_file)
    assert sans(a) == ["a.example.test"] and key_desc(a) == "ecdsa:256"
    assert sans(c) == ["c.example.test", "d.example.test"] and key_desc(c) == "rsa:2048"
    assert d.serial_number == c.serial_number
    assert a.serial_number != c.serial_number

    # the static vhost keeps its own file certificate
    s = served_cert(HTTPS_PORT, "static.example.test")
    assert sans(s) == ["static.example.test"]

    doc = wait_for(lambda: (lambda d: d if all(x["state"] == "valid"
                                               for x in d["certificates"]) else None)(
        get_status()), 20, "both certificates valid")
    ids = sorted(x["id"] for x in doc["certificates"])
    assert ids == ["a.example.test_ecdsa-256", "c.example.test_rsa-2048"]
    assert status_cert(doc, "c.example.test_rsa-2048")["key_type"] == "rsa:2048"
    assert not srv.crashes(), srv.crashes()
