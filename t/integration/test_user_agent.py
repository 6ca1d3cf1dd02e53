"""Both servers: every request to the CA says which module and which server
send it (RFC 8555 section 6.1): "ngx_acme/<version> nginx/<version>
OpenSSL/<version>" and "mod_acme_auto/<version> Apache/<version>
OpenSSL/<version>", the server's version as its binary reports it.  The CA
is real pebble behind ca_proxy.py, which records each request's
User-Agent."""

import os
import re
import subprocess

import pytest

import apache_server
import nginx_server
from apache_server import apache_factory  # noqa: F401 (fixture)
from ca_proxy import CaProxy
from tlsutil import wait_acme_cert

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _acme_version():
    with open(os.path.join(REPO, "common", "core", "acme_util.h")) as f:
        m = re.search(r'#define ACME_VERSION "([^"]+)"', f.read())
    assert m, "ACME_VERSION not found in common/core/acme_util.h"
    return m.group(1)


def _server_version(cmd, pattern):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    m = re.search(pattern, r.stdout.decode(errors="replace"))
    assert m, (cmd, r.stdout)
    return m.group(1)


SERVERS = {
    # kind: (module, server product, version command, its pattern)
    "nginx": ("ngx_acme", "nginx", [nginx_server.NGINX, "-v"], r"nginx/(\d+\.\d+\.\d+)"),
    "apache": ("mod_acme_auto", "Apache", [apache_server.APACHE, "-v"],
               r"Apache/(\d+\.\d+\.\d+)"),
}


@pytest.mark.parametrize("kind", sorted(SERVERS))
def test_user_agent_names_module_and_server(kind, request, pebble, workdir, state_dir):
    module, product, cmd, pattern = SERVERS[kind]
    expected = re.compile(r"^%s/%s %s/%s OpenSSL/\d+\.\d+\.\d+[a-z]?$"
                          % (re.escape(module), re.escape(_acme_version()),
                             product, re.escape(_server_version(cmd, pattern))))

    root = pebble.write_root(os.path.join(workdir, "root.pem"))
    proxy = CaProxy(pebble).start()
    try:
        if kind == "nginx":
            srv = nginx_server.start_managed(request.getfixturevalue("nginx_factory")(),
                                             proxy, state_dir)
        else:
            srv = request.getfixturevalue("apache_factory")()
            apache_server.start_managed(srv, proxy, state_dir)
        wait_acme_cert(nginx_server.HTTPS_PORT if kind == "nginx" else apache_server.HTTPS_PORT,
                       "a.example.test", root, 60, proc_alive=srv.running)
    finally:
        proxy.stop()

    agents = list(proxy.user_agents)
    # a whole order went through the proxy: directory, account, order, ...
    assert proxy.count("/order-plz") >= 1 and proxy.count("/certZ/") >= 1, proxy.requests
    assert len(set(agents)) == 1, set(agents)
    assert expected.match(agents[0] or ""), (agents[0], expected.pattern)
