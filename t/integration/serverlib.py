"""What the nginx and Apache test harnesses share: config placeholders,
port probes, log files and the status document."""
import os
import socket


def substitute(text, values):
    """Replaces @NAME@ placeholders (nginx and Apache syntax both use $ and
    braces, so those cannot serve)."""
    for k, v in values.items():
        text = text.replace("@%s@" % k, str(v))
    return text


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def status_cert(doc, cert_id=None):
    """The certificate entry with that id (the only one when id is None)."""
    certs = doc["certificates"]
    if cert_id is None:
        assert len(certs) == 1, certs
        return certs[0]
    for c in certs:
        if c["id"] == cert_id:
            return c
    raise AssertionError("no certificate %s in %s" % (cert_id, doc))


class ServerLogs:
    """Error log and captured stderr of a server under test; needs
    error_log_path, stderr_path and _log_offset (set at start)."""

    def _log_size(self):
        try:
            return os.path.getsize(self.error_log_path)
        except OSError:
            return 0

    def error_log(self, since_start=False):
        try:
            with open(self.error_log_path, "rb") as f:
                if since_start:
                    f.seek(self._log_offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""
