"""nginx and Apache: the http-01 answers come before anything else of the
server: the plain HTTP server / vhost redirects every other path (nginx: a
server-level "return 301", Apache: mod_alias), yet pebble validates through
it; an unknown or malformed token is a plain 404 on every server / vhost,
plain HTTP or HTTPS, without touching the disk (a file at the token's path
in the document root is never served)."""

import os

from tlsutil import http_get, is_self_signed, raw_http, wait_acme_cert

ISSUE_TIMEOUT = 60

# Each server's syntax: the HTTPS server redirects everything, the plain
# one everything but /index.html (the rest of the server answers that).
NGINX_CONF = """
@ISSUER@
    server {
        listen 127.0.0.1:@HTTPS@ ssl;
        server_name a.example.test b.example.test;
        acme_certificate pebble;
        return 301 https://elsewhere.example.test$request_uri;
    }
    server {
        listen 127.0.0.1:@HTTP@;
        server_name a.example.test b.example.test;
        root @ROOT@;
        if ($uri != /index.html) {
            return 301 https://$host:@HTTPS@$request_uri;
        }
    }
"""

APACHE_CONF = """
LoadModule alias_module @MODDIR@/mod_alias.so
@ISSUER@
<Directory "@ROOT@">
    Require all granted
</Directory>
<VirtualHost 127.0.0.1:@HTTPS@>
    ServerName a.example.test
    ServerAlias b.example.test
    SSLEngine on
    AcmeCertificate pebble
    Redirect 301 / https://elsewhere.example.test/
</VirtualHost>
<VirtualHost 127.0.0.1:@HTTP@>
    ServerName a.example.test
    ServerAlias b.example.test
    DocumentRoot "@ROOT@"
    RedirectMatch 301 ^/(?!index\\.html$) https://a.example.test:@HTTPS@/
</VirtualHost>
"""

CONF = {"nginx": NGINX_CONF, "apache": APACHE_CONF}
ANSWERING = {"nginx": "acme: answering http-01 token",
             "apache": "mod_acme_auto: answering http-01 challenge"}

BAD_TOKENS = [
    "unknownTokenAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "unknownTOKEN_123-x",
    "short",
    "a.b",
    "bad.token",
    "has%20space",
    "abc/def",
    "a/b",
    "tok=",
    "A" * 300,
    "",
    "onfile",       # a file at that path in the document root
]


def _docroot(workdir, index_body):
    root = os.path.join(workdir, "docroot")
    os.makedirs(os.path.join(root, ".well-known", "acme-challenge"))
    with open(os.path.join(root, ".well-known", "acme-challenge", "onfile"), "w") as f:
        f.write("from disk\n")
    with open(os.path.join(root, "index.html"), "wb") as f:
        f.write(index_body + b"\n")
    for d, _, _ in os.walk(root):
        os.chmod(d, 0o755)
    return root


def test_http01_before_redirects_and_404s(server, pebble, root_file, state_dir, workdir):
    root = _docroot(workdir, server.plain_http_body)
    server.raw.write_conf(CONF[server.kind].replace(
        "@ISSUER@", server.issuer_block(pebble, state_dir)),
        ROOT=root, HTTP=server.http_port, HTTPS=server.https_port)
    server.start()
    http = "http://127.0.0.1:%d" % server.http_port
    https = "https://127.0.0.1:%d" % server.https_port

    # the redirect is active, and other paths are left to the server
    status, _, _ = http_get(http + "/some/page", host="a.example.test")
    assert status == 301
    status, _, body = http_get(http + "/index.html", host="a.example.test")
    assert status == 200 and server.plain_http_body in body, (status, body[:200])

    for token in BAD_TOKENS:
        path = "/.well-known/acme-challenge/" + token
        status, _, body = http_get(http + path, host="a.example.test")
        assert status == 404, (token, status, body[:200])
        assert b"from disk" not in body
        # on the TLS server too (the handler runs for every server / vhost)
        status, _, body = http_get(https + path, host="a.example.test")
        assert status == 404, (token, status, body[:200])

    for req in (b"GET /.well-known/acme-challenge/abc?x=1 HTTP/1.1\r\nHost: a.example.test\r\n"
                b"Connection: close\r\n\r\n",
                b"HEAD /.well-known/acme-challenge/abcdefghijklmnop HTTP/1.1\r\n"
                b"Host: unknown.example.test\r\nConnection: close\r\n\r\n"):
        assert raw_http(server.http_port, req) == 404, req
    # an encoded slash and a traversal attempt: Apache refuses it; nginx
    # decodes and resolves it to /etc/passwd, a path of the rest of the
    # server (redirected here)
    assert raw_http(server.http_port,
                    b"GET /.well-known/acme-challenge/..%2f..%2fetc%2fpasswd "
                    b"HTTP/1.1\r\nHost: a.example.test\r\n"
                    b"Connection: close\r\n\r\n") in \
        ((400, 404) if server.kind == "apache" else (301,))

    # the real challenges were answered through the redirecting server
    cert = wait_acme_cert(server.https_port, "a.example.test", root_file, ISSUE_TIMEOUT,
                          proc_alive=server.running)
    assert not is_self_signed(cert)
    assert ANSWERING[server.kind] in server.error_log()
    assert server.running()
    assert not server.problems(), server.problems()
