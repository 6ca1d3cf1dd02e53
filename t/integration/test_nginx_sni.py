"""nginx: several managed certificates and a static one behind one listener;
SNI picks the right one, the static server is left alone."""

import os

from nginx_server import HTTP_PORT, HTTPS_PORT, get_status
from pebble import make_ca, make_leaf
from tlsutil import key_desc, sans, served_cert, wait_acme_cert, wait_for

CONF = """
    acme_issuer pebble {
        uri @URI@;
        contact admin@example.test;
        state_path @STATE@;
        accept_terms_of_service;
        ssl_trusted_certificate @CA@;
    }
    server {
        listen 127.0.0.1:@HTTPS@ ssl default_server;
        server_name static.example.test;
        ssl_certificate @STATIC_CRT@;
        ssl_certificate_key @STATIC_KEY@;
        location / { return 200 "static\\n"; }
    }
    server {
        listen 127.0.0.1:@HTTPS@ ssl;
        server_name a.example.test;
        acme_certificate pebble;
        location / { return 200 "a\\n"; }
    }
    server {
        listen 127.0.0.1:@HTTPS@ ssl;
        server_name c.example.test d.example.test;
        acme_certificate pebble key=rsa:2048;
        location / { return 200 "c\\n"; }
    }
    server {
        listen 127.0.0.1:@HTTP@;
        server_name a.example.test c.example.test d.example.test;
        location = /acme-status { acme_status; }
    }
"""


def test_sni_selects_managed_and_static(nginx_factory, pebble, root_file, state_dir, workdir):
    ca_key, ca_crt = make_ca(workdir, "static-ca")
    key, crt = make_leaf(workdir, ca_key, ca_crt, "static", ["DNS:static.example.test"],
                         cn="static.example.test")
    srv = nginx_factory()
    srv.write_conf(CONF, URI=pebble.directory_url, CA=pebble.ca_pem, STATE=state_dir,
                   STATIC_CRT=crt, STATIC_KEY=key, HTTP=HTTP_PORT, HTTPS=HTTPS_PORT)
    srv.start(ports=(HTTPS_PORT, HTTP_PORT))

    a = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, 60, proc_alive=srv.running)
    c = wait_acme_cert(HTTPS_PORT, "c.example.test", root_file, 60, proc_alive=srv.running)
    d = served_cert(HTTPS_PORT, "d.example.test", cafile=root_file)
    assert sans(a) == ["a.example.test"] and key_desc(a) == "ecdsa:256"
    assert sans(c) == ["c.example.test", "d.example.test"] and key_desc(c) == "rsa:2048"
    assert d.serial_number == c.serial_number

    # the static server keeps its own certificate, with and without SNI
    for sni in ("static.example.test", "unknown.example.test", None):
        s = served_cert(HTTPS_PORT, sni, cafile=ca_crt if sni == "static.example.test" else None)
        assert sans(s) == ["static.example.test"], sni

    doc = wait_for(lambda: (lambda d: d if all(x["state"] == "valid" for x in d["certificates"])
                            else None)(get_status(host="a.example.test")),
                   20, "both certificates valid in the status")
    ids = sorted(x["id"] for x in doc["certificates"])
    assert ids == ["a.example.test_ecdsa-256", "c.example.test_rsa-2048"]
    assert not srv.alerts(), srv.alerts()
