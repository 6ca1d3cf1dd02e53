"""nginx: the http-01 handler answers a plain 404 for unknown or malformed
tokens, before any rewrite (a server-level "return 301" included), and
touches no files."""

import pytest

from nginx_server import HTTP_PORT, HTTPS_PORT
from tlsutil import http_get, raw_http

CONF = """
    acme_issuer pebble {
        uri @URI@;
        contact admin@example.test;
        state_path @STATE@;
        accept_terms_of_service;
        ssl_trusted_certificate @CA@;
    }
    server {
        listen 127.0.0.1:@HTTPS@ ssl;
        server_name a.example.test;
        acme_certificate pebble;
        return 301 https://elsewhere.example.test$request_uri;
    }
    server {
        listen 127.0.0.1:@HTTP@;
        server_name a.example.test;
        root @ROOT@;
        return 301 https://$host:@HTTPS@$request_uri;
    }
"""

BAD_TOKENS = [
    "unknownTokenAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "short",
    "a.b",
    "has%20space",
    "abc/def",
    "tok=",
    "A" * 300,
    "",
]


@pytest.fixture
def server(nginx_factory, pebble, workdir):
    import os
    root = os.path.join(workdir, "docroot", ".well-known", "acme-challenge")
    os.makedirs(root)
    # a file that must never be served by the handler (no file-system access)
    with open(os.path.join(root, "onfile"), "w") as f:
        f.write("from disk\n")
    os.chmod(os.path.join(workdir, "docroot"), 0o755)
    srv = nginx_factory()
    srv.write_conf(CONF, URI=pebble.directory_url, CA=pebble.ca_pem,
                   STATE=os.path.join(workdir, "state", "pebble"),
                   ROOT=os.path.join(workdir, "docroot"),
                   HTTP=HTTP_PORT, HTTPS=HTTPS_PORT)
    return srv.start(ports=(HTTP_PORT, HTTPS_PORT))


def test_redirect_is_active(server):
    status, headers, _ = http_get("http://127.0.0.1:%d/some/page" % HTTP_PORT,
                                  host="a.example.test")
    assert status == 301


@pytest.mark.parametrize("token", BAD_TOKENS + ["onfile"],
                         ids=lambda t: t[:20] or "empty")
def test_unknown_or_malformed_token_is_404(server, token):
    path = "/.well-known/acme-challenge/" + token
    status, _, body = http_get("http://127.0.0.1:%d%s" % (HTTP_PORT, path),
                               host="a.example.test")
    assert status == 404, (status, body[:200])
    assert b"from disk" not in body
    # on the TLS server too (the handler runs for every server)
    status, _, _ = http_get("https://127.0.0.1:%d%s" % (HTTPS_PORT, path),
                            host="a.example.test")
    assert status == 404


def test_raw_request_variants_are_404(server):
    for req in (b"GET /.well-known/acme-challenge/abc?x=1 HTTP/1.1\r\nHost: a.example.test\r\n"
                b"Connection: close\r\n\r\n",
                b"HEAD /.well-known/acme-challenge/abcdefghijklmnop HTTP/1.1\r\n"
                b"Host: unknown.example.test\r\nConnection: close\r\n\r\n"):
        assert raw_http(HTTP_PORT, req) == 404, req
    assert server.running()
    assert not server.alerts(), server.alerts()
