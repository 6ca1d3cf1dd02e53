"""nginx: configurations written for the official nginx-acme module behave
the same here (issue 11), one test per difference that was removed."""

import os
import types

import nginx_server
import pebble as pebble_mod
from tlsutil import wait_acme_cert


def test_ca_host_resolved_at_run_time_with_default_resolver_timeout(
        nginx_factory, pebble, workdir, state_dir):
    """"resolver" in http{} without "resolver_timeout": the CA's host,
    unknown to /etc/hosts, is resolved by the workers with nginx's default
    timeout (30 s); the unset value used to be taken as is, and every
    lookup timed out at once."""
    root = pebble.write_root(os.path.join(workdir, "root.pem"))
    ca = types.SimpleNamespace(
        directory_url="https://%s:%d/dir" % (pebble_mod.CA_RUNTIME_NAME,
                                             pebble_mod.API_PORT),
        ca_pem=pebble.ca_pem)
    srv = nginx_factory()
    nginx_server.start_managed(
        srv, ca, state_dir,
        http_extra="resolver 127.0.0.1:%d ipv6=off;" % pebble_mod.DNS_PORT)
    wait_acme_cert(nginx_server.HTTPS_PORT, "a.example.test", root, 60,
                   proc_alive=srv.running)
    log = srv.error_log()
    assert "Operation timed out" not in log, log
