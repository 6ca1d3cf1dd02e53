"""nginx and Apache: key_reuse / AcmeKeyReuse (issue 13, keys for pinned
clients): with it on, a renewal keeps the certificate key; off (the
default), a renewal makes a fresh one.  The status's "spki_pin" is the pin
(RFC 7469) of the key served.  The renewal is asked for at the status
control (test_control.py)."""
import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import serialization

from test_control import issued, new_served, request, start


def spki(cert):
    return cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def pin(cert):
    return base64.b64encode(hashlib.sha256(spki(cert)).digest()).decode()


@pytest.mark.parametrize("reuse", ["on", "off"])
def test_key_reuse(server, pebble, root_file, state_dir, reuse):
    start(server, pebble, state_dir, issuer={"key_reuse": reuse})
    first, cid = issued(server, root_file)
    assert server.status_cert()["spki_pin"] == pin(first)

    status, body = request(server, "/acme-status?action=renew&id=" + cid)
    assert status == 202, body
    second = new_served(server, root_file, first)

    if reuse == "on":
        assert spki(second) == spki(first)
    else:
        assert spki(second) != spki(first)
    server.wait_installed()
    assert server.status_cert()["spki_pin"] == pin(second)
    assert not server.problems(), server.problems()
