"""Hostile input for IMAP and POP3: NUL and 8-bit bytes, absurd literals
and numbers, deep nesting, huge sequence sets, mailbox names that try to
leave the Maildir, a client sending one byte at a time, POP3 argument
edge cases, and memory under 1,000 connections that never finish a line.

After every case the server still greets on SMTP, IMAP and POP3 within
2 s, logged no crash, and no file appeared outside alice's Maildir."""

import os
import re
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest

from conftest import (LOG_BAD, PASSWORD, SANITIZED, TIMEOUT, _Servers,
                      free_port)

ALICE = "alice@example.test"
GREET_WITHIN = 2 * (4 if SANITIZED else 1)
MARK = "zqx"            # in every hostile name, to look for it on disk


def ctx():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


def short(v):
    return repr(v[:24]) + ("..%d" % len(v) if len(v) > 24 else "")


@pytest.fixture(scope="module")
def srv(tmp_path_factory, _template_root):
    servers = _Servers(tmp_path_factory.mktemp("hostile-imap-pop3"),
                       _template_root)
    ports = {k: free_port() for k in ("imap", "imaps", "pop3", "pop3s")}
    s = servers.make(
        extra={k: {"listen": f"127.0.0.1:{p}"} for k, p in ports.items()},
        limits={"max_errors": 100000, "max_connections_per_ip": 3000,
                "max_connections": 5000})
    s.ports = ports
    with s.smtp() as c:
        for i in range(3):
            c.sendmail("x@remote.test", [ALICE],
                       f"Subject: m{i}\r\n\r\nbody {i}\r\n".encode())
    s.snapshot = tree(s.root.parent)
    yield s
    servers.finish()


def tree(top):
    return {p for p in Path(top).rglob("*")}


def outside_maildir(s):
    """Paths that appeared since the fixture started and are not inside
    alice's Maildir (the log and SQLite's files may change, not appear)."""
    md = s.maildir(ALICE).resolve()
    new = tree(s.root.parent) - s.snapshot
    bad = []
    for p in new:
        if p.name.endswith(("-wal", "-shm", "-journal")):
            continue
        r = p.resolve() if not p.is_symlink() else p
        if md != r and md not in r.parents:
            bad.append(p)
    for top in ("/tmp", "/", str(s.data_dir), str(s.data_dir / "mail"),
                str(s.data_dir / "mail" / "example.test")):
        bad += [Path(top) / n for n in os.listdir(top) if MARK in n]
    return bad


def greets(host, port, prefix, tls=False):
    t0 = time.monotonic()
    with socket.create_connection((host, port), timeout=GREET_WITHIN) as so:
        so.settimeout(GREET_WITHIN)
        data = b""
        while b"\r\n" not in data:
            chunk = so.recv(1024)
            assert chunk, "closed before greeting on %d" % port
            data += chunk
        assert data.startswith(prefix), data
    return time.monotonic() - t0


def healthy(s):
    assert s.proc.poll() is None, s.log_text()[-3000:]
    greets(s.host, s.port, b"220")
    greets(s.host, s.ports["imap"], b"* OK")
    greets(s.host, s.ports["pop3"], b"+OK")
    log = s.log_text()
    for bad in LOG_BAD:
        assert bad not in log, log[-3000:]
    stray = outside_maildir(s)
    assert stray == [], stray


class Imap:
    """A raw IMAP client over implicit TLS; lines as bytes."""

    def __init__(self, s, login=True):
        so = socket.create_connection((s.host, s.ports["imaps"]),
                                      timeout=TIMEOUT)
        self.s = ctx().wrap_socket(so, server_hostname="localhost")
        self.buf = b""
        assert self.line().startswith(b"* OK")
        if login:
            r = self.cmd(b"l", f'LOGIN "{ALICE}" "{PASSWORD}"'.encode())
            assert r[-1].startswith(b"l OK"), r

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("closed; partial %r" % self.buf[:200])
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def until_tagged(self, tag):
        lines = []
        while True:
            l = self.line()
            lines.append(l)
            if l.startswith(tag + b" ") or l.startswith(b"+"):
                return lines

    def cmd(self, tag, rest):
        self.s.sendall(tag + b" " + rest + b"\r\n")
        return self.until_tagged(tag)

    def try_cmd(self, tag, rest):
        """The reply lines, or None when the server closed the session
        (allowed for input this bad)."""
        try:
            return self.cmd(tag, rest)
        except (ConnectionError, ssl.SSLError, OSError):
            return None

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def refused(lines, tag):
    """None (closed) or a tagged NO/BAD, never OK or a continuation."""
    if lines is None:
        return True
    last = lines[-1]
    return last.startswith(tag + b" NO") or last.startswith(tag + b" BAD") \
        or last.startswith(b"* BYE")


# ---- IMAP: NUL and 8-bit --------------------------------------------------

@pytest.mark.parametrize("line", [
    b'SELECT "IN\x00BOX"',
    b"SELECT IN\x00BOX",
    b'CREATE "caf\xe9 ' + MARK.encode() + b'"',
    b"CREATE \xff\xfe" + MARK.encode(),
    b"FETCH 1 (FLAGS\x00)",
    b"SEL\xffECT INBOX",
    b"\x00\x00\x00",
    b'SEARCH CHARSET UTF-8 SUBJECT "\xc3\x28\x00"',
    b'STORE 1 +FLAGS (\\Seen\x00 \xe9)',
], ids=short)
def test_imap_nul_and_8bit(srv, line):
    c = Imap(srv)
    r = c.try_cmd(b"h1", line)
    if r is not None:
        assert not r[-1].startswith(b"+"), r
        c.try_cmd(b"h2", b"NOOP")
    c.close()
    healthy(srv)


def test_imap_nul_before_login(srv):
    c = Imap(srv, login=False)
    r = c.try_cmd(b"p1", f'LOGIN "ali\x00ce@example.test" "{PASSWORD}"'
                  .encode())
    assert refused(r, b"p1"), r
    r = c.try_cmd(b"p2", b"LOGIN \xff\xfe \x00")
    assert refused(r, b"p2"), r
    c.close()
    healthy(srv)


# ---- IMAP: literals -------------------------------------------------------

@pytest.mark.parametrize("lit", [
    b"{99999999999}", b"{-1}", b"{18446744073709551616}",
    b"{18446744073709551615}", b"{99999999999999999999999999}",
    b"{1x}", b"{}", b"{ 5}", b"{5",
])
def test_imap_absurd_literal_is_refused(srv, lit):
    c = Imap(srv)
    r = c.try_cmd(b"a1", b"APPEND INBOX " + lit)
    assert refused(r, b"a1"), r
    c.close()
    healthy(srv)


@pytest.mark.parametrize("lit", [
    b"{99999999999+}", b"{18446744073709551616+}", b"{-1+}",
])
def test_imap_absurd_nonsync_literal(srv, lit):
    c = Imap(srv)
    c.s.sendall(b"a1 APPEND INBOX " + lit + b"\r\n" + b"x" * 70000 + b"\r\n")
    try:
        r = c.until_tagged(b"a1")
        assert refused(r, b"a1"), r
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    c.close()
    healthy(srv)
    assert len(srv.maildir_files(ALICE)) == 3


def test_imap_literal_over_preauth_limit(srv):
    c = Imap(srv, login=False)
    r = c.try_cmd(b"b1", b"LOGIN {20000}")
    assert refused(r, b"b1"), r
    c.close()
    c = Imap(srv, login=False)
    c.s.sendall(b"b2 LOGIN {100000+}\r\n" + b"u" * 100000 + b" pw\r\n")
    try:
        r = c.until_tagged(b"b2")
        assert refused(r, b"b2"), r
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    c.close()
    healthy(srv)


# ---- IMAP: nesting and sequence sets --------------------------------------

@pytest.mark.parametrize("line", [
    b"FETCH 1 " + b"(" * 1000 + b"FLAGS" + b")" * 1000,
    b"FETCH 1 (BODY[HEADER.FIELDS " + b"(" * 500 + b"SUBJECT" + b")" * 500
    + b"])",
    b"SEARCH " + b"(" * 10000 + b"ALL" + b")" * 10000,
    b"SEARCH " + b"NOT " * 5000 + b"ALL",
    b"SEARCH " + b"OR ALL " * 3000 + b"ALL",
    b"SEARCH " + b"(" * 20000,
    b"SEARCH " + b")" * 20000,
    b"FETCH 1 (BODY[" + b"1." * 5000 + b"1])",
], ids=short)
def test_imap_deep_nesting(srv, line):
    c = Imap(srv)
    assert c.cmd(b"s0", b"SELECT INBOX")[-1].startswith(b"s0 OK")
    r = c.try_cmd(b"n1", line)
    assert refused(r, b"n1"), r and r[-1][:200]
    if r is not None:
        assert c.cmd(b"n2", b"NOOP")[-1].startswith(b"n2 OK")
    c.close()
    healthy(srv)


def test_imap_huge_sequence_sets(srv):
    c = Imap(srv)
    assert c.cmd(b"s0", b"SELECT INBOX")[-1].startswith(b"s0 OK")
    ranges = b",".join(b"%d:%d" % (2 * i + 1, 2 * i + 2)
                       for i in range(4097))
    r = c.try_cmd(b"q1", b"FETCH " + ranges + b" FLAGS")
    assert refused(r, b"q1"), r and r[-1][:200]
    c = Imap(srv) if r is None else c
    if r is None:
        assert c.cmd(b"s0", b"SELECT INBOX")[-1].startswith(b"s0 OK")
    ranges = b",".join(b"%d" % (i + 1) for i in range(4096))
    r = c.cmd(b"q2", b"FETCH " + ranges + b" FLAGS")
    assert r[-1].startswith(b"q2 OK") or r[-1].startswith(b"q2 BAD"), r[-1]
    r = c.cmd(b"q3", b"FETCH 1:4294967295 FLAGS")
    assert r[-1].startswith(b"q3 OK"), r
    assert len([l for l in r if l.startswith(b"* ")]) == 3
    r = c.cmd(b"q4", b"UID FETCH 1:4294967295 FLAGS")
    assert r[-1].startswith(b"q4 OK"), r
    for bad in (b"4294967296", b"0", b"-1", b"1:4294967296",
                b"99999999999999999999", b"1:*:2", b"*:-1", b",", b"1,,2"):
        r = c.cmd(b"q5", b"FETCH " + bad + b" FLAGS")
        assert r[-1].startswith(b"q5 BAD") or r[-1].startswith(b"q5 NO"), \
            (bad, r)
    r = c.cmd(b"q6", b"SEARCH " + b" ".join([b"1:4294967295"] * 1000))
    assert r[-1].startswith(b"q6 "), r
    c.close()
    healthy(srv)


# ---- IMAP: mailbox names that try to leave the Maildir ---------------------

M = MARK.encode()
HOSTILE_NAMES = [
    b"..", b"../" + M, b"../../" + M, b"../../../../../../tmp/" + M,
    b"/", b"/tmp/" + M, b"/" + M, b"." + M, b".." + M, b"..." + M,
    b"a/../../" + M, b"INBOX/../../" + M, b"INBOX/../" + M,
    M + b"\x01ctl", M + b"\x7f", M + b"\r", b"%2E%2E/" + M, b"%2E" + M,
    b"%2F..%2F" + M, b"x" * 5000 + M, (b"d/" * 200) + M,
    b"&AGE" + M, b"&" + M, b"&-&-&" + M, b"&AAA-" + M, b"&2D3cAA-" + M,
    b"&Jjo!" + M, b"&AC8ALgAu-" + M, b"&AC4ALgAv-" + M, b"tmp", b"new",
    b"cur", b"INBOX.." + M, b".Sent/../../" + M, b"~/" + M, b"\\" + M,
    b"\\..\\..\\" + M, b"a\x00b" + M,
]


def quoted_or_literal(name):
    if any(b < 0x20 or b > 0x7e or b in b'"\\' for b in name):
        return b"{%d+}\r\n" % len(name) + name
    return b'"' + name + b'"'


def test_imap_hostile_mailbox_names(srv):
    c = Imap(srv)
    assert c.cmd(b"c0", b'CREATE "ok' + M + b'"')[-1].startswith(b"c0 OK")
    for i, name in enumerate(HOSTILE_NAMES):
        arg = quoted_or_literal(name)
        for verb in (b"CREATE %s", b"SELECT %s", b"STATUS %s (MESSAGES)",
                     b'RENAME "ok' + M + b'" %s', b"RENAME %s \"back\"",
                     b"APPEND %s {1+}\r\nx", b"COPY 1 %s", b"DELETE %s",
                     b"SUBSCRIBE %s", b'LIST "" %s', b"LIST %s \"*\""):
            tag = b"m%d" % i
            if verb.startswith(b"COPY"):
                c.cmd(b"s", b"SELECT INBOX")
            r = c.try_cmd(tag, verb % arg if b"%s" in verb else verb)
            if r is None:
                c = Imap(srv)
                continue
            assert not r[-1].startswith(b"+"), (name, verb, r)
        stray = outside_maildir(srv)
        assert stray == [], (name, stray)
    c.close()
    healthy(srv)
    md = srv.maildir(ALICE).resolve()
    for p in md.rglob("*"):
        assert not p.is_symlink(), p
        assert md in p.resolve().parents, p


# ---- IMAP: a client sending one byte at a time ----------------------------

def test_one_byte_at_a_time_does_not_block_others(srv):
    slow = socket.create_connection((srv.host, srv.ports["imap"]),
                                    timeout=TIMEOUT)
    slow.recv(1024)
    stop = threading.Event()
    line = b"a1 CAPABILITY " + b"x" * 2000 + b"\r\n"

    def dribble():
        i = 0
        while not stop.is_set():
            try:
                slow.sendall(line[i % len(line):i % len(line) + 1])
            except OSError:
                return
            i += 1
            time.sleep(0.002)
    t = threading.Thread(target=dribble)
    t.start()
    try:
        worst = 0
        for _ in range(10):
            worst = max(worst, greets(srv.host, srv.port, b"220"),
                        greets(srv.host, srv.ports["imap"], b"* OK"),
                        greets(srv.host, srv.ports["pop3"], b"+OK"))
            c = Imap(srv)
            t0 = time.monotonic()
            assert c.cmd(b"b1", b"NOOP")[-1].startswith(b"b1 OK")
            worst = max(worst, time.monotonic() - t0)
            c.close()
        assert worst < GREET_WITHIN, worst
    finally:
        stop.set()
        t.join()
        slow.close()
    healthy(srv)


# ---- POP3 ----------------------------------------------------------------

class Pop:
    def __init__(self, s, login=True):
        so = socket.create_connection((s.host, s.ports["pop3s"]),
                                      timeout=TIMEOUT)
        self.s = ctx().wrap_socket(so, server_hostname="localhost")
        self.buf = b""
        assert self.line().startswith(b"+OK")
        if login:
            self.login()

    def login(self):
        # The previous case's session may still hold the maildrop lock
        # for a moment after its client went away.
        end = time.monotonic() + TIMEOUT
        while True:
            assert self.cmd(f"USER {ALICE}".encode()).startswith(b"+OK")
            r = self.cmd(f"PASS {PASSWORD}".encode())
            if r.startswith(b"+OK") or b"[IN-USE]" not in r or \
                    time.monotonic() > end:
                break
            time.sleep(0.1)
        assert r.startswith(b"+OK"), r

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("closed; partial %r" % self.buf[:200])
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def cmd(self, line):
        self.s.sendall(line + b"\r\n")
        return self.line()

    def try_cmd(self, line):
        try:
            return self.cmd(line)
        except (ConnectionError, ssl.SSLError, OSError):
            return None

    def close(self):
        try:
            self.s.settimeout(2)
            self.cmd(b"QUIT")
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        try:
            self.s.close()
        except OSError:
            pass


@pytest.mark.parametrize("line", [
    b"RETR 0", b"RETR -1", b"RETR 99999999999999", b"RETR 4294967297",
    b"RETR 18446744073709551617", b"RETR 1x", b"RETR", b"RETR 1 2",
    b"RETR +1", b"RETR 0x1", b"RETR \xff", b"LIST junk", b"LIST 1 2 3",
    b"LIST -1", b"LIST 0", b"TOP 1 -1", b"TOP 1",
    b"TOP -1 0", b"TOP 1 99999999999999999999", b"TOP 0 0", b"TOP 1 x",
    b"DELE 0", b"DELE -1", b"DELE 99999999999999", b"UIDL 0",
    b"UIDL -5", b"X" * 300, b"RETR " + b"9" * 250, b"LIST " + b"1" * 5000,
], ids=short)
def test_pop3_argument_edge_cases(srv, line):
    c = Pop(srv)
    try:
        r = c.try_cmd(line)
        if r is not None:
            assert r.startswith(b"-ERR"), (line, r)
            stat = c.try_cmd(b"STAT")
            assert stat is None or stat.startswith(b"+OK 3 "), stat
    finally:
        c.close()
    healthy(srv)
    assert len(srv.maildir_files(ALICE)) == 3


@pytest.mark.parametrize("line", [
    b"LIST \x00", b"LIST 1\x00junk", b"RETR \x001", b"NOOP \x00",
    b"STAT junk", b"RSET x" * 40, b"NOOP " + b"\xff" * 200,
], ids=short)
def test_pop3_junk_after_command(srv, line):
    """Either refused or read up to the NUL/ignored: never a crash, and the
    session stays in step."""
    c = Pop(srv)
    try:
        r = c.try_cmd(line)
        if r is not None:
            assert r.startswith((b"-ERR", b"+OK")), (line, r)
            if b"\x00" in line:    # never read only up to a NUL
                assert r.startswith(b"-ERR"), (line, r)
            # Skip a multi-line answer, if there was one, up to STAT's.
            c.s.sendall(b"STAT\r\n")
            while not re.match(rb"\+OK 3 \d+$", c.line()):
                pass
    finally:
        c.close()
    healthy(srv)
    assert len(srv.maildir_files(ALICE)) == 3


@pytest.mark.parametrize("line", [
    f"USER ali\x00ce@example.test".encode(), b"USER \x00",
    b"USER " + b"a" * 5000, b"PASS \x00" + PASSWORD.encode(),
    b"APOP " + ALICE.encode() + b" \x00" * 16, b"AUTH PLAIN \x00\x00",
    b"AUTH " + b"X" * 300, b"\x00", b"\xff\xfe\xfd",
], ids=short)
def test_pop3_hostile_before_login(srv, line):
    c = Pop(srv, login=False)
    r = c.try_cmd(line)
    assert r is None or r.startswith((b"-ERR", b"+ ", b"+OK")), r
    if r is not None and b"\x00" in line:
        assert r.startswith(b"-ERR"), (line, r)
    if r is not None and line.startswith(b"USER"):
        # USER always answers +OK (no user enumeration); what matters is
        # that a NUL never lets the real password in for a cut name.
        r = c.try_cmd(f"PASS {PASSWORD}".encode())
        assert r is None or r.startswith(b"-ERR"), r
    c.close()
    healthy(srv)


# ---- memory: 1,000 connections that never finish -------------------------

def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def push(so, data):
    """Sends what the socket takes without blocking."""
    so.setblocking(False)
    sent = 0
    try:
        while sent < len(data):
            n = so.send(data[sent:sent + 65536])
            if n <= 0:
                break
            sent += n
    except (BlockingIOError, OSError):
        pass
    return sent


def test_memory_with_1000_hostile_connections(srv, capsys):
    before = rss_kb(srv.proc.pid)
    socks = []
    long_line = b"A" * (256 * 1024)
    try:
        for i in range(1000):
            port = srv.ports["imap"] if i % 2 == 0 else srv.port
            so = socket.create_connection((srv.host, port), timeout=TIMEOUT)
            socks.append(so)
            if i % 4 == 0:          # IMAP: an unfinished literal
                push(so, b"a LOGIN {16000+}\r\n" + b"u" * 15999)
            else:                   # IMAP or SMTP: a line without an end
                push(so, long_line)
        time.sleep(3 * (4 if SANITIZED else 1))
        for so in socks:            # and keep pushing
            push(so, long_line)
        time.sleep(2 * (4 if SANITIZED else 1))
        after = rss_kb(srv.proc.pid)
        with capsys.disabled():
            print(f"\nVmRSS with 1000 hostile connections: before={before} "
                  f"kB after={after} kB (+{after - before} kB)")
        limit = (800 if SANITIZED else 200) * 1024
        assert after < limit, (before, after)
        assert srv.proc.poll() is None
        greets(srv.host, srv.port, b"220")
    finally:
        for so in socks:
            so.close()
    time.sleep(1)
    healthy(srv)
