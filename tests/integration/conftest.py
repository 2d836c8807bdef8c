"""Fixtures for the correo integration tests (pytest, stdlib only).

Binary: env CORREO_BIN, default <repo>/build/correo. Set CORREO_SANITIZED=1
when CORREO_BIN is the ASan/UBSan build: every wait gets longer.

Fixture API (kept stable; other test files rely on it):

``server`` -- a factory fixture. ``server(**kw)`` makes a data_dir under
tmp_path, picks a free loopback port, writes the config, adds the users and
aliases with the CLI, starts ``correo -c CFG serve`` and returns a ``Server``
once the port greets with 220. Keywords (all optional):

    limits   dict of [limits] keys, e.g. {"max_recipients": 3}
    users    list of addresses (default DEFAULT_USERS); each gets PASSWORD
    domains  list of extra local domains (``correo domain add``), added
             before the users
    aliases  dict {alias: "t1@d,t2@d"} added with ``correo alias add``
             after the users
    hostname [server] hostname (default HOSTNAME = "mx.example.test")
    extra    dict {section: {key: value}} merged into the config last
             ([delivery] resolver defaults to 127.0.0.1@9, where nothing
             answers: remote mail stays queued unless a test sets one)
    start    False to only prepare (then call .start())

Users, domains and aliases are made with the CLI once per test run for
each distinct set; later servers get a copy of that data_dir.

It may be called several times in one test (each call: its own data_dir
and port). Teardown stops every server (SIGTERM, 10 s, SIGKILL after) and
fails the test if its log holds "AddressSanitizer", "runtime error:"
(UBSan) or "level=panic".

``shared_server`` -- module-scoped: one ``Server`` started with the
defaults, shared by the tests of a module that only look at replies (or
compare maildirs before/after). Same log checks, at the end of the module.

``Server`` attributes and methods:

    .host .port          where [smtp] listens ("127.0.0.1", int)
    .data_dir .cfg       pathlib.Path of the data_dir and the config file
    .hostname            the configured host name
    .proc                the subprocess.Popen of the running serve (or None)
    .log_text()          the serve log so far (all runs), as str
    .maildir(addr)       Path DATA_DIR/mail/DOMAIN/LOCAL (lower-cased)
    .maildir_files(addr) sorted list of Paths in new/ and cur/ of that user
    .all_maildir_files() every file in any new/ or cur/ under data_dir/mail
    .queue_files()       every regular file under data_dir/queue
    .cli(*args, input=None, check=True) -> CompletedProcess (text, captured);
                         fails on sanitizer reports in its stderr, and on
                         a non-zero exit when check
    .start()             start serve and wait for the 220 greeting
    .stop()              SIGTERM, wait, assert exit status 0
    .kill9()             SIGKILL, wait
    .restart()           .stop() if running, then .start()
    .smtp(**kw)          an smtplib.SMTP connected to the server
    .raw(**kw)           a RawSMTP connected to the server (greeting NOT read)

``RawSMTP(host, port, timeout=T, source=None)`` -- a raw socket client
(source: local address to connect from, e.g. "127.0.0.2"):

    .send(data)          bytes or str (str is UTF-8 encoded), sent as is
    .reply(timeout=None) read one whole reply (multi-line too) ->
                         (code:int, text:str) with the lines of text joined
                         by "\\n", without codes; raises socket.timeout
    .replies(n)          list of n replies
    .cmd(line)           send line + CRLF, return .reply()
    .greeting()          .reply(), asserting 220
    .lines_of_last       raw lines of the last reply (list of str)
    .closed(timeout)     True when the server has closed the connection
    .close()

Helper constants/functions: HOSTNAME, DOMAIN, PASSWORD, DEFAULT_USERS,
TIMEOUT (base wait, scaled for sanitized builds), free_port(),
wait_until(fn, timeout).
"""

import os
import shutil
import signal
import smtplib
import socket
import subprocess
import time
from pathlib import Path

import pytest

import dnszone

REPO = Path(__file__).resolve().parents[2]
CORREO_BIN = os.environ.get("CORREO_BIN") or str(REPO / "build" / "correo")
SANITIZED = bool(os.environ.get("CORREO_SANITIZED"))
SLOW = 4 if SANITIZED else 1
TIMEOUT = 10 * SLOW

HOSTNAME = "mx.example.test"
DOMAIN = "example.test"
PASSWORD = "correct horse battery staple"
DEFAULT_USERS = ("alice@example.test", "bob@example.test")

OTHER_SERVICES = ("submission", "submissions", "imap", "imaps", "pop3",
                  "pop3s", "odmr")
LOG_BAD = ("AddressSanitizer", "runtime error:", "level=panic",
           "LeakSanitizer")


def free_port():
    """A port on 127.0.0.1 that was free a moment ago (dnszone.free_port:
    outside the ephemeral range, never handed out twice)."""
    return dnszone.free_port()


def wait_until(fn, timeout=TIMEOUT, interval=0.05):
    """Calls fn until it returns a true value; returns it or None."""
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() >= end:
            return None
        time.sleep(interval)


class RawSMTP:
    """An SMTP client on a plain socket that sends exactly what it is given."""

    def __init__(self, host, port, timeout=TIMEOUT, source=None):
        self.timeout = timeout
        self.sock = socket.create_connection(
            (host, port), timeout=timeout,
            source_address=(source, 0) if source else None)
        self.buf = b""
        self.lines_of_last = []

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("utf-8")
        self.sock.sendall(data)

    def _line(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("no complete reply line")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by server; partial: %r"
                                      % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        assert line.endswith(b"\r"), "reply line without CRLF: %r" % line
        return line[:-1].decode("utf-8", "replace")

    def reply(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        lines = []
        code = None
        while True:
            line = self._line(deadline)
            assert len(line) >= 3 and line[:3].isdigit(), \
                "bad reply line %r" % line
            if code is None:
                code = int(line[:3])
            assert int(line[:3]) == code, "code changed in %r" % lines
            lines.append(line)
            if len(line) == 3 or line[3] == " ":
                break
            assert line[3] == "-", "bad reply line %r" % line
        self.lines_of_last = lines
        return code, "\n".join(l[4:] for l in lines)

    def replies(self, n, timeout=None):
        return [self.reply(timeout) for _ in range(n)]

    def cmd(self, line, timeout=None):
        if isinstance(line, str):
            line = line.encode("utf-8")
        self.send(line + b"\r\n")
        return self.reply(timeout)

    def greeting(self):
        code, text = self.reply()
        assert code == 220, (code, text)
        return code, text

    def closed(self, timeout=None):
        """True when the peer closed (EOF or reset) within timeout; any
        unread bytes are kept in .buf."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True
            self.buf += chunk

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Server:
    def __init__(self, root, limits=None, users=DEFAULT_USERS, aliases=None,
                 hostname=HOSTNAME, extra=None, domains=(), template=None):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.data_dir = root / "data"
        if template is not None:
            # A data_dir prepared by the same CLI calls earlier in the run:
            # copying it is much faster than hashing the passwords again.
            shutil.copytree(template, self.data_dir, symlinks=True)
            users, domains, aliases = (), (), None
        else:
            self.data_dir.mkdir()
        self.cfg = root / "correo.conf"
        self.log_path = root / "serve.log"
        self.hostname = hostname
        self.host = "127.0.0.1"
        self.port = free_port()
        self.proc = None
        self._log = None
        self._write_config(limits or {}, extra or {})
        for dom in domains:
            self.cli("domain", "add", dom)
        for addr in users:
            self.cli("user", "add", addr, "--password-stdin",
                     input=PASSWORD + "\n")
        for alias, targets in (aliases or {}).items():
            self.cli("alias", "add", alias, targets)

    def _write_config(self, limits, extra):
        sections = {
            "server": {"hostname": self.hostname,
                       "data_dir": str(self.data_dir), "user": ""},
            "smtp": {"listen": "%s:%d" % (self.host, self.port)},
        }
        for svc in OTHER_SERVICES:
            sections[svc] = {"listen": ""}
        sections["limits"] = {k: str(v) for k, v in limits.items()}
        # No test reaches the Internet: by default the resolver is a
        # loopback port where nothing answers, so remote mail stays queued
        # (temporary failures). Tests of delivery pass their own.
        sections["delivery"] = {"resolver": "127.0.0.1@9"}
        for sec, kv in extra.items():
            sections.setdefault(sec, {}).update(
                {k: str(v) for k, v in kv.items()})
        text = ""
        for sec, kv in sections.items():
            text += "[%s]\n" % sec
            for k, v in kv.items():
                text += "%s = %s\n" % (k, v)
            text += "\n"
        self.cfg.write_text(text)

    # -- CLI ------------------------------------------------------------
    def cli(self, *args, input=None, check=True):
        p = subprocess.run([CORREO_BIN, "-c", str(self.cfg)] + list(args),
                           input=input, capture_output=True, text=True,
                           timeout=TIMEOUT * 3)
        for bad in LOG_BAD:
            assert bad not in p.stderr, "correo %s:\n%s" % (
                " ".join(args), p.stderr)
        if check:
            assert p.returncode == 0, "correo %s: rc=%d stderr=%s" % (
                " ".join(args), p.returncode, p.stderr)
        return p

    # -- process --------------------------------------------------------
    def start(self):
        assert self.proc is None, "already running"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [CORREO_BIN, "-c", str(self.cfg), "serve"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=self._log)
        if not wait_until(self._greets, TIMEOUT * 2, 0.05):
            rc = self.proc.poll()
            self.kill9()
            pytest.fail("correo serve did not greet (rc=%s); log:\n%s"
                        % (rc, self.log_text()))
        return self

    def _greets(self):
        if self.proc.poll() is not None:
            pytest.fail("correo serve exited rc=%d; log:\n%s"
                        % (self.proc.returncode, self.log_text()))
        try:
            with RawSMTP(self.host, self.port, timeout=TIMEOUT) as c:
                code, _ = c.reply()
                # Finish the probe session so that it no longer counts
                # against the connection limits of the test.
                c.send(b"QUIT\r\n")
                c.reply()
                c.closed()
                return code == 220
        except (OSError, ConnectionError):
            return False

    def _reap(self):
        self.proc = None
        if self._log:
            self._log.close()
            self._log = None

    def stop(self):
        """SIGTERM, wait; the exit status must be 0."""
        assert self.proc is not None, "not running"
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self._reap()
            pytest.fail("correo did not exit within %d s of SIGTERM; log:\n%s"
                        % (TIMEOUT, self.log_text()))
        self._reap()
        assert rc == 0, "correo exited %d after SIGTERM; log:\n%s" % (
            rc, self.log_text())

    def kill9(self):
        if self.proc is None:
            return
        self.proc.kill()
        self.proc.wait()
        self._reap()

    def restart(self):
        if self.proc is not None:
            self.stop()
        return self.start()

    def _teardown(self):
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self._reap()

    # -- inspection -----------------------------------------------------
    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def maildir(self, addr):
        local, _, domain = addr.rpartition("@")
        return self.data_dir / "mail" / domain.lower() / local.lower()

    def maildir_files(self, addr):
        md = self.maildir(addr)
        out = []
        for sub in ("new", "cur"):
            d = md / sub
            if d.is_dir():
                out.extend(p for p in d.iterdir() if p.is_file())
        return sorted(out)

    def all_maildir_files(self):
        mail = self.data_dir / "mail"
        if not mail.is_dir():
            return []
        return sorted(p for p in mail.rglob("*")
                      if p.is_file() and p.parent.name in ("new", "cur"))

    def queue_files(self):
        q = self.data_dir / "queue"
        if not q.is_dir():
            return []
        # queue/journal holds the delivery journal's segment files, made
        # once and reused, and queue/tmp/blank-* are empty files the
        # journal makes ahead for messages to come: they are not messages.
        return sorted(p for p in q.rglob("*") if p.is_file()
                      and p.parent.name != "journal"
                      and not p.name.startswith("blank-"))

    # -- clients --------------------------------------------------------
    def smtp(self, **kw):
        kw.setdefault("timeout", TIMEOUT)
        return smtplib.SMTP(self.host, self.port,
                            local_hostname="client.example.net", **kw)

    def raw(self, **kw):
        return RawSMTP(self.host, self.port, **kw)


_TEMPLATES = {}


def _template_for(root, kw):
    """The data_dir made by the CLI for these users/domains/aliases, built
    once per test run under root."""
    users = tuple(kw.get("users", DEFAULT_USERS))
    domains = tuple(kw.get("domains", ()))
    aliases = tuple(sorted((kw.get("aliases") or {}).items()))
    key = (users, domains, aliases)
    if key not in _TEMPLATES:
        t = Server(root / ("t%d" % len(_TEMPLATES)), users=users,
                   domains=domains, aliases=dict(aliases))
        _TEMPLATES[key] = t.data_dir
    return _TEMPLATES[key]


@pytest.fixture(scope="session")
def _template_root(tmp_path_factory):
    _TEMPLATES.clear()
    return tmp_path_factory.mktemp("templates")


class _Servers:
    """The servers one fixture made; finish() stops them and checks logs."""

    def __init__(self, root, template_root):
        self.root = root
        self.template_root = template_root
        self.made = []

    def make(self, start=True, **kw):
        template = _template_for(self.template_root, kw)
        s = Server(self.root / ("srv%d" % (len(self.made) + 1)),
                   template=template, **kw)
        self.made.append(s)
        if start:
            s.start()
        return s

    def finish(self):
        problems = []
        for s in self.made:
            s._teardown()
            log = s.log_text()
            for bad in LOG_BAD:
                if bad in log:
                    problems.append("%s in log of %s:\n%s"
                                    % (bad, s.root, log))
                    break
        if problems:
            pytest.fail("\n\n".join(problems))


@pytest.fixture
def server(tmp_path, _template_root):
    servers = _Servers(tmp_path, _template_root)
    yield servers.make
    servers.finish()


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory, _template_root):
    """One default server (server() with no keywords) for a whole test
    module, for tests that only read replies or compare before/after."""
    servers = _Servers(tmp_path_factory.mktemp("shared"), _template_root)
    yield servers.make()
    servers.finish()
