"""A small keep-alive HTTP/1.1 client and a peerdistd launcher for the benchmarks (stdlib only)."""
import json, os, re, shutil, signal, socket, subprocess, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_BINARY = os.path.join(ROOT, ".build", "release", "peerdistd")


class Server:
    """peerdistd on port 0 with a temporary data directory; stderr goes to a file."""

    def __init__(self, binary=DEFAULT_BINARY, args=(), log_level=None):
        self.tmp = tempfile.mkdtemp(prefix="peerdist-bench-")
        self.errpath = os.path.join(self.tmp, "stderr.log")
        self.err = open(self.errpath, "wb")
        cmd = [binary, "--port", "0", "--data-dir", os.path.join(self.tmp, "data")] + list(args)
        if log_level:
            cmd += ["--log-level", log_level]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.err,
                                     env=dict(os.environ, SWIFT_BACKTRACE="enable=no"))
        line = self.proc.stdout.readline().decode(errors="replace").strip()
        m = re.match(r"listening on (.*):(\d+)$", line)
        if not m:
            raise SystemExit(f"peerdistd did not start: {line!r}")
        self.host, self.port = m.group(1).strip("[]"), int(m.group(2))
        self.pid = self.proc.pid

    def status_field(self, name):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
        raise KeyError(name)

    def rss_kib(self):
        return self.status_field("VmRSS")

    def threads(self):
        return self.status_field("Threads")

    def cpu_ticks(self):
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15)

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.err.close()
        self.remove_data()

    def remove_data(self):
        """Removes the temporary data directory (when the process has stopped)."""
        shutil.rmtree(self.tmp, ignore_errors=True)


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:200]!r}>"


class Conn:
    """One keep-alive connection; reconnects when the server closed it."""

    def __init__(self, host, port, timeout=70):
        self.host, self.port, self.timeout = host, port, timeout
        self.sock = None
        self.buf = b""

    def connect(self):
        self.close()
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        if self.sock:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock = None

    @staticmethod
    def encode(method, path, body=None, headers=None, ctype=None):
        h = {"Host": "127.0.0.1"}
        if body is not None:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                ctype = ctype or "application/json"
            h["Content-Type"] = ctype or "application/octet-stream"
            h["Content-Length"] = str(len(body))
        elif method in ("POST", "PUT"):
            h["Content-Length"] = "0"
        h.update(headers or {})
        return (f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n").encode() + (body or b"")

    def send_raw(self, raw):
        if self.sock is None:
            self.connect()
        self.sock.sendall(raw)

    def _fill(self):
        chunk = self.sock.recv(262144)
        if not chunk:
            raise ConnectionError("closed by the server")
        self.buf += chunk

    def read_response(self, head_request=False):
        while True:
            while b"\r\n\r\n" not in self.buf:
                self._fill()
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            lines = head.split(b"\r\n")
            status = int(lines[0].split(b" ", 2)[1])
            headers = {}
            for l in lines[1:]:
                k, v = l.split(b":", 1)
                headers[k.strip().lower().decode()] = v.strip().decode("latin-1")
            if 100 <= status < 200:
                continue
            n = 0 if head_request or status in (204, 304) else int(headers.get("content-length", "0"))
            while len(self.buf) < n:
                self._fill()
            body, self.buf = self.buf[:n], self.buf[n:]
            if headers.get("connection", "").lower() == "close":
                self.close()
            return Response(status, headers, body)

    def request(self, method, path, body=None, headers=None, ctype=None, retry=True):
        raw = self.encode(method, path, body, headers, ctype)
        try:
            self.send_raw(raw)
            return self.read_response(method == "HEAD")
        except (ConnectionError, BrokenPipeError, OSError):
            self.close()
            if not retry:
                raise
            self.send_raw(raw)
            return self.read_response(method == "HEAD")


def b64(data):
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
