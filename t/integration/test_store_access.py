"""nginx and Apache: the store is checked as the user that writes it (issue
10 item 4).  The master / parent runs as root and hands the store to the
workers' / children's user (www-data here, as in production:
nginx_server.py, apache_server.py); a state_path / AcmeStateDir that user
cannot reach fails the configuration test and the start, naming the
directive, file:line and the component that blocks; a store the user can
read but not write is a warning: the server starts and serves what is
stored."""

import os
from types import SimpleNamespace

import pytest

from servers import HTTPS_PORT
from storeplant import WORKER, as_worker, bundle_pem, subject_cn, worker_dir
from tlsutil import served_cert

# root-owned directories the workers cannot enter need root to make (and a
# root master to start with "user www-data")
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

NAME = "a.example.test"
CERT_ID = NAME + "_ecdsa-256"


def _directive(server):
    return "state_path" if server.kind == "nginx" else "AcmeStateDir"


def _write_conf(server, ca_pem, state_dir):
    """The CA is never reached (port 1): everything here is about the
    store."""
    ca = SimpleNamespace(directory_url="https://127.0.0.1:1/dir", ca_pem=ca_pem)
    server.write_managed(ca, state_dir, names=[NAME], issuer={"timeout": "2s"})


def test_unreachable_store_fails_config_test_and_start(server, pebble_factory,
                                                       workdir):
    # state below a root-owned 0700 directory: root could create it, the
    # workers / children (www-data) could never enter it
    priv = os.path.join(workdir, "priv")
    os.mkdir(priv, 0o700)
    state_dir = os.path.join(priv, "acme")
    _write_conf(server, pebble_factory(start=False).ca_pem, state_dir)
    line = server.conf_lines(_directive(server) + " ")
    assert len(line) == 1, line
    where = "%s:%d" % (server.raw.conf_path, line[0])
    blocks = '"%s" is not searchable by user "www-data"' % priv

    rc, out = server.test_config()
    assert rc != 0, out
    assert blocks in out, out
    assert _directive(server) in out and state_dir in out, out
    assert where in out, out
    assert not os.path.exists(state_dir), "-t created the store"
    if server.kind == "apache":
        rc, out = server.raw.apachectl_configtest()
        assert rc != 0 and blocks in out, out

    # the start repeats the check and fails the same way
    with pytest.raises(RuntimeError) as e:
        server.start()
    assert blocks in str(e.value), e.value
    assert where in str(e.value), e.value
    assert not os.path.exists(state_dir), "the failed start created the store"

    # reachable (x for others): both pass and the store is the user's
    os.chmod(priv, 0o711)
    rc, out = server.test_config()
    assert rc == 0, out
    assert "www-data" not in out, out
    server.start()
    assert os.stat(state_dir).st_uid == WORKER.pw_uid


def test_store_read_only_for_the_user_is_a_warning(server, pebble_factory,
                                                   state_dir):
    # a valid certificate is stored; the store directory itself is not
    # writable for its user (r-x): nothing new can be stored there
    cert_dir = worker_dir(os.path.join(worker_dir(os.path.join(
        worker_dir(state_dir), "certs")), CERT_ID))
    bundle = os.path.join(cert_dir, "bundle.pem")
    with open(bundle, "w") as f:
        f.write(bundle_pem(NAME, "stored"))
    os.chmod(bundle, 0o600)
    as_worker(bundle)
    os.chmod(state_dir, 0o555)
    _write_conf(server, pebble_factory(start=False).ca_pem, state_dir)
    warning = '"%s" is not writable by user "www-data"' % state_dir

    rc, out = server.test_config()
    assert rc == 0, out
    assert warning in out and "stored certificates are served" in out, out

    server.start()
    assert subject_cn(served_cert(HTTPS_PORT, NAME)) == "stored"
    assert server.status_cert(CERT_ID)["state"] == "valid"
    # said at start too (nginx: on stderr, before the error log is open)
    log = server.raw.stderr_text() + server.error_log()
    assert warning in log, log
    assert "[emerg]" not in log, log
