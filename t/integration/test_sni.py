"""nginx and Apache: two managed certificates with different key types and
a static (unmanaged) one behind one listener; SNI picks the right one (each
managed server / vhost served its own certificate), the static server is
left alone."""

from pebble import make_ca, make_leaf
from servers import HTTPS_PORT
from tlsutil import key_desc, sans, served_cert, wait_acme_cert, wait_for


def test_sni_selects_managed_and_static(server, pebble, root_file, state_dir, workdir):
    ca_key, ca_crt = make_ca(workdir, "static-ca")
    key, crt = make_leaf(workdir, ca_key, ca_crt, "static", ["DNS:static.example.test"],
                         cn="static.example.test")
    # "c" names its names on the acme_certificate / AcmeCertificate line
    server.write_managed(pebble, state_dir, names=["a.example.test"],
                         more=[server.static_vhost("static.example.test", crt, key),
                               server.vhost(["c.example.test", "d.example.test"],
                                            cert_args="key=rsa:2048", explicit=True)])
    rc, out = server.test_config()
    assert rc == 0, out
    server.start()

    a = wait_acme_cert(HTTPS_PORT, "a.example.test", root_file, 60, proc_alive=server.running)
    c = wait_acme_cert(HTTPS_PORT, "c.example.test", root_file, 60, proc_alive=server.running)
    d = served_cert(HTTPS_PORT, "d.example.test", cafile=root_file)
    assert sans(a) == ["a.example.test"] and key_desc(a) == "ecdsa:256"
    assert sans(c) == ["c.example.test", "d.example.test"] and key_desc(c) == "rsa:2048"
    assert d.serial_number == c.serial_number
    assert a.serial_number != c.serial_number

    # the static server (the listener's default) keeps its own certificate,
    # with and without SNI
    for sni in ("static.example.test", "unknown.example.test", None):
        s = served_cert(HTTPS_PORT, sni, cafile=ca_crt if sni == "static.example.test" else None)
        assert sans(s) == ["static.example.test"], sni

    doc = wait_for(lambda: (lambda d: d if all(x["state"] == "valid" for x in d["certificates"])
                            else None)(server.status()),
                   20, "both certificates valid in the status")
    ids = sorted(x["id"] for x in doc["certificates"] if x["managed"])
    assert ids == ["a.example.test_ecdsa-256", "c.example.test_rsa-2048"]
    # the static one is the inventory's (test_inventory.py)
    assert [x["file"] for x in doc["certificates"] if not x["managed"]] == [crt]
    assert server.status_cert("c.example.test_rsa-2048")["key_type"] == "rsa:2048"
    assert not server.problems(), server.problems()
