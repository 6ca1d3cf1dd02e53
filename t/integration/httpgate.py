"""A gate for the CA's http-01 validations (tests only, loopback).

Listens where pebble's VA connects (httpPort), reads each request's head
and records its path, then holds the connection while the gate is closed.
Once opened, each held (and later) request is forwarded to the server's
real port and the response's status is recorded before it is passed on.
So a test knows the moment a token is published and validated (the VA's
request arrives only after the client answered the challenge) and decides
when the validation may see the server's answer."""

import socket
import threading
import time

HEAD_MAX = 16384
HOLD_MAX = 120          # s a connection is held at most
IO_TIMEOUT = 30


class HttpGate:
    def __init__(self, listen_port, backend_port, host="127.0.0.1"):
        self.listen_port = listen_port
        self.backend_port = backend_port
        self.host = host
        self.requests = []              # {"path", "status"} in arrival order
        self._cv = threading.Condition()
        self._open = threading.Event()
        self._stop = False
        self._sock = None
        self._thread = None

    # -- control ------------------------------------------------------------
    def start(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.listen_port))
        s.listen(16)
        s.settimeout(0.2)
        self._sock = s
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop = True
        self._open.set()
        if self._thread:
            self._thread.join(5)
        if self._sock:
            self._sock.close()

    def open(self):
        self._open.set()

    def close(self):
        """Holds the requests arriving from now on again."""
        self._open.clear()

    def wait(self, pred, timeout, what):
        """Waits until pred(requests) is true; returns its value."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                v = pred(list(self.requests))
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("timed out after %ss waiting for %s; "
                                         "requests: %r" % (timeout, what, self.requests))
                self._cv.wait(min(left, 0.5))

    def status_of(self, token):
        with self._cv:
            return [r["status"] for r in self.requests if r["path"].endswith("/" + token)]

    # -- workers --------------------------------------------------------------
    def _accept_loop(self):
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        rec = None
        try:
            conn.settimeout(IO_TIMEOUT)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < HEAD_MAX:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            line = head.split(b"\r\n", 1)[0].decode("latin-1").split()
            rec = {"path": line[1] if len(line) > 1 else "", "status": None}
            with self._cv:
                self.requests.append(rec)
                self._cv.notify_all()
            self._open.wait(HOLD_MAX)
            if self._stop:
                return
            status, data = self._forward(head)
            with self._cv:
                rec["status"] = status
                self._cv.notify_all()
            conn.sendall(data)
        except OSError:
            pass
        finally:
            if rec is not None and rec["status"] is None:
                with self._cv:
                    rec["status"] = 0       # not answered
                    self._cv.notify_all()
            conn.close()

    def _forward(self, head):
        """One request to the backend; (status, raw response)."""
        b = socket.create_connection((self.host, self.backend_port), timeout=IO_TIMEOUT)
        try:
            b.sendall(head)
            data = b""
            while b"\r\n\r\n" not in data and len(data) < HEAD_MAX:
                chunk = b.recv(4096)
                if not chunk:
                    break
                data += chunk
            resp_head, _, body = data.partition(b"\r\n\r\n")
            lines = resp_head.decode("latin-1").split("\r\n")
            status = int(lines[0].split()[1])
            length = 0
            for h in lines[1:]:
                k, _, v = h.partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v.strip())
            while len(body) < length:
                chunk = b.recv(4096)
                if not chunk:
                    break
                body += chunk
            return status, resp_head + b"\r\n\r\n" + body
        finally:
            b.close()
