"""What the nginx and Apache test harnesses share: config placeholders,
port probes, log files and the status document."""
import glob
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


def sanitizer_env(preload_var, log_dir, extra=None):
    """The environment of a server under test, with extra's variables (a
    test's LD_PRELOAD shim goes after the sanitizer's).  With $<preload_var> set to
    the AddressSanitizer runtime (for modules built by `./build.sh asan`,
    README "Testing under AddressSanitizer"), it is preloaded into the
    server and reports go to log_dir/asan.<pid> (see asan_reports; leak
    checks off: servers free at exit what they like)."""
    env = dict(os.environ)
    env.setdefault("LANG", "C")
    preload = env.get(preload_var)
    if preload:
        os.makedirs(log_dir, exist_ok=True)
        os.chmod(log_dir, 0o1777)           # the workers' user writes there
        env["LD_PRELOAD"] = preload
        env["ASAN_OPTIONS"] = "detect_leaks=0:log_path=%s" % os.path.join(
            log_dir, "asan")
    for k, v in (extra or {}).items():
        if k == "LD_PRELOAD" and env.get(k):
            v = env[k] + ":" + v
        env[k] = v
    return env


def status_cert(doc, cert_id=None):
    """The certificate entry with that id (the only managed one when id is
    None: the inventory's "managed": false entries follow them)."""
    certs = doc["certificates"]
    if cert_id is None:
        certs = [c for c in certs if c.get("managed", True)]
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

    @property
    def asan_dir(self):
        return os.path.join(os.path.dirname(self.error_log_path), "asan")

    def asan_reports(self):
        """AddressSanitizer reports the server wrote (sanitizer_env): a
        list of (path, text), empty when not under ASan or clean."""
        out = []
        for p in sorted(glob.glob(os.path.join(self.asan_dir, "asan.*"))):
            with open(p, "rb") as f:
                out.append((p, f.read().decode(errors="replace")))
        return out

    def check_asan(self):
        """Raises AssertionError with the reports when there are any."""
        reports = self.asan_reports()
        if reports:
            raise AssertionError("AddressSanitizer reports:\n" + "\n".join(
                "== %s\n%s" % (p, t[-6000:]) for p, t in reports))

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""
