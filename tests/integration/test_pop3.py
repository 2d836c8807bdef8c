"""The POP3 server (RFC 1939, 2449 CAPA/PIPELINING/RESP-CODES, 2595 STLS,
5034 SASL, 3206 AUTH/SYS codes) on a pop3 (STLS) and a pop3s (implicit
TLS) listener: the protocol on the wire byte for byte, the maildrop lock,
UIDL stability, the snapshot and UPDATE rules, and real clients (poplib,
fetchmail, getmail6)."""

import base64
import getpass
import hashlib
import hmac
import os
import poplib
import pwd
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import PASSWORD, TIMEOUT, free_port, wait_until

ALICE = "alice@example.test"
BOB = "bob@example.test"
SENDER = "sender@remote.test"


def ctx():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


@pytest.fixture
def pop(server):
    p110, p995 = free_port(), free_port()
    srv = server(extra={"pop3": {"listen": f"127.0.0.1:{p110}"},
                        "pop3s": {"listen": f"127.0.0.1:{p995}"}},
                 limits={"max_errors": 100})
    srv.p110, srv.p995 = p110, p995
    return srv


# ---- helpers -------------------------------------------------------------

def message(subject, body="hello\r\n"):
    return (f"From: <{SENDER}>\r\nTo: <{ALICE}>\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@remote.test>\r\n"
            f"\r\n{body}").encode()


def deliver(srv, msgs, rcpt=ALICE):
    """Delivers each bytes message to rcpt over port 25 (one session)."""
    with srv.smtp() as c:
        for m in msgs:
            assert c.sendmail(SENDER, [rcpt], m) == {}


def file_with(srv, marker, user=ALICE):
    """The one Maildir file of user holding marker (bytes)."""
    hits = [p for p in srv.maildir_files(user) if marker in p.read_bytes()]
    assert len(hits) == 1, (marker, hits)
    return hits[0]


def unstuff(lines):
    """Undoes RFC 1939 byte-stuffing of raw multi-line body lines."""
    return b"".join((l[1:] if l.startswith(b".") else l) + b"\r\n"
                    for l in lines)


class Pop:
    """A POP3 client on a plain or TLS socket that sends exactly what it is
    given and returns replies as raw bytes lines (no CRLF)."""

    def __init__(self, srv, port=None, tls=False):
        s = socket.create_connection((srv.host, port or srv.p110),
                                     timeout=TIMEOUT)
        if tls:
            s = ctx().wrap_socket(s, server_hostname="localhost")
        self.s = s
        self.buf = b""
        self.greeting = self.line().decode()
        assert self.greeting.startswith("+OK"), self.greeting

    def send(self, data):
        self.s.sendall(data.encode() if isinstance(data, str) else data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("closed by server; partial %r"
                                      % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self):
        return self.line().decode("utf-8", "replace")

    def cmd(self, line):
        self.send((line.encode() if isinstance(line, str) else line)
                  + b"\r\n")
        return self.reply()

    def multi(self):
        """The lines of a multi-line body up to (without) the "." line."""
        out = []
        while True:
            l = self.line()
            if l == b".":
                return out
            out.append(l)

    def cmd_multi(self, line):
        first = self.cmd(line)
        assert first.startswith("+OK"), (line, first)
        return first, self.multi()

    def capa(self):
        _, lines = self.cmd_multi("CAPA")
        return [l.decode() for l in lines]

    def stls(self):
        r = self.cmd("STLS")
        assert r.startswith("+OK"), r
        assert self.buf == b""
        self.s = ctx().wrap_socket(self.s, server_hostname="localhost")

    def login(self, user=ALICE, password=PASSWORD):
        r = self.cmd(f"USER {user}")
        assert r.startswith("+OK"), r
        return self.cmd(f"PASS {password}")

    def closed(self, timeout=TIMEOUT):
        self.s.settimeout(timeout)
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
            return True

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def session(srv, user=ALICE, tls="stls"):
    """A Pop logged in as user (STLS on 110, or implicit TLS on 995)."""
    if tls == "ssl":
        c = Pop(srv, srv.p995, tls=True)
    else:
        c = Pop(srv)
        c.stls()
    r = c.login(user)
    assert r.startswith("+OK"), r
    return c


def listing(c, cmd="LIST"):
    """{msgno: value} of a LIST or UIDL without argument."""
    _, lines = c.cmd_multi(cmd)
    out = {}
    for l in lines:
        n, v = l.decode().split(" ")
        out[int(n)] = v
    return out


def pop_lib(srv, tls="ssl"):
    """A poplib client logged in as alice."""
    if tls == "ssl":
        p = poplib.POP3_SSL(srv.host, srv.p995, timeout=TIMEOUT,
                            context=ctx())
    else:
        p = poplib.POP3(srv.host, srv.p110, timeout=TIMEOUT)
        p.stls(context=ctx())
    p.user(ALICE)
    p.pass_(PASSWORD)
    return p


def wait_disconnect_logged(srv, n):
    """Waits until the log shows n POP3 disconnects of alice."""
    ok = wait_until(lambda: srv.log_text().count(
        f"event=disconnect user={ALICE}") >= n)
    assert ok, srv.log_text()


# ---- RFC 1939 basics, TLS before passwords ---------------------------------

def test_greeting_and_no_password_before_tls(pop):
    c = Pop(pop)
    assert c.greeting.startswith("+OK ")
    caps = c.capa()
    assert "STLS" in caps
    assert "USER" not in caps
    assert not any(x.split()[0] == "SASL" for x in caps), caps
    r = c.cmd(f"USER {ALICE}")
    assert r.startswith("-ERR"), r
    r = c.cmd(f"PASS {PASSWORD}")
    assert r.startswith("-ERR"), r
    r = c.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORD}"))
    assert r.startswith("-ERR"), r
    # The session continues; after STLS the same login works.
    c.stls()
    caps = c.capa()
    assert "STLS" not in caps and "USER" in caps
    r = c.login()
    assert r.startswith("+OK"), r
    assert c.cmd("STAT") == "+OK 0 0"
    assert c.cmd("QUIT").startswith("+OK")
    assert c.closed()


def test_poplib_stls_login(pop):
    deliver(pop, [message("one")])
    p = pop_lib(pop, tls="stls")
    count, size = p.stat()
    assert count == 1
    assert size == pop.maildir_files(ALICE)[0].stat().st_size
    assert p.quit().startswith(b"+OK")


def test_stls_twice_and_stls_on_pop3s(pop):
    c = Pop(pop)
    c.stls()
    assert c.cmd("STLS").startswith("-ERR")
    c2 = Pop(pop, pop.p995, tls=True)
    assert "STLS" not in c2.capa()
    assert c2.cmd("STLS").startswith("-ERR")
    assert c2.login().startswith("+OK")


def test_stls_command_injection_is_discarded(pop):
    """Plaintext pipelined after STLS (CVE-2011-0411 style) must not be
    executed inside TLS."""
    c = Pop(pop)
    c.send("STLS\r\nQUIT\r\n")
    assert c.reply().startswith("+OK")
    assert c.buf == b""
    c.s = ctx().wrap_socket(c.s, server_hostname="localhost")
    caps = c.capa()     # the first reply inside TLS is ours
    assert "USER" in caps
    assert c.login().startswith("+OK")
    assert c.cmd("QUIT").startswith("+OK")


def test_wrong_password_and_unknown_user_look_the_same(pop):
    c = Pop(pop, pop.p995, tls=True)
    r1 = c.login(ALICE, "wrong password")
    r2 = c.login("nobody@example.test", "wrong password")
    assert r1.startswith("-ERR [AUTH]"), r1
    assert r1 == r2
    # Still in AUTHORIZATION: the right password works now.
    assert c.login().startswith("+OK")
    assert "event=auth result=fail" in pop.log_text()
    assert "wrong password" not in pop.log_text()


def test_commands_need_login(pop):
    c = Pop(pop, pop.p995, tls=True)
    for cmd in ("STAT", "LIST", "RETR 1", "DELE 1", "UIDL", "NOOP"):
        assert c.cmd(cmd).startswith("-ERR"), cmd
    assert c.cmd("PASS x").startswith("-ERR")   # PASS without USER
    assert c.cmd("QUIT").startswith("+OK")
    assert c.closed()


# ---- TRANSACTION -------------------------------------------------------------

BODY5 = "line 1\r\nline 2\r\nline 3\r\nline 4\r\nline 5\r\n"


@pytest.fixture
def three(pop):
    """pop with three messages for alice: short, five lines, long."""
    long_body = "".join(f"long line {i:06d} " + "x" * 60 + "\r\n"
                        for i in range(6000))       # ~ 470 KB
    deliver(pop, [message("msg one"), message("msg two", BODY5),
                  message("msg three", long_body)])
    assert len(pop.maildir_files(ALICE)) == 3
    return pop


def number_of(c, subject):
    """The message number whose TOP n 0 holds Subject: subject."""
    _, lines = c.cmd_multi("LIST")
    for l in lines:
        n = int(l.split()[0])
        _, head = c.cmd_multi(f"TOP {n} 0")
        if f"Subject: {subject}".encode() in head:
            return n
    raise AssertionError(subject)


def test_stat_list_uidl(three):
    c = session(three)
    files = three.maildir_files(ALICE)
    sizes = sorted(p.stat().st_size for p in files)
    r = c.cmd("STAT")
    m = re.fullmatch(r"\+OK (\d+) (\d+)", r)
    assert m, r
    assert int(m.group(1)) == 3 and int(m.group(2)) == sum(sizes)
    lst = listing(c)
    assert sorted(lst) == [1, 2, 3]
    assert sorted(int(v) for v in lst.values()) == sizes
    for n, size in lst.items():
        r = c.cmd(f"LIST {n}")
        assert r == f"+OK {n} {size}", r
    uidl = listing(c, "UIDL")
    assert sorted(uidl) == [1, 2, 3]
    assert len(set(uidl.values())) == 3
    for n, uid in uidl.items():
        # RFC 1939 7: 1 to 70 characters in 0x21..0x7E.
        assert 1 <= len(uid) <= 70 and all(0x21 <= ord(ch) <= 0x7E
                                           for ch in uid)
        assert c.cmd(f"UIDL {n}") == f"+OK {n} {uid}"
    assert c.cmd("NOOP").startswith("+OK")
    assert c.cmd("QUIT").startswith("+OK")
    assert c.closed()
    assert len(three.maildir_files(ALICE)) == 3


def test_retr_is_the_file_byte_for_byte(three):
    c = session(three)
    lst = listing(c)
    for subject in ("msg one", "msg two", "msg three"):
        n = number_of(c, subject)
        path = file_with(three, f"Subject: {subject}\r\n".encode())
        data = path.read_bytes()
        first, lines = c.cmd_multi(f"RETR {n}")
        assert first == f"+OK {len(data)} octets", first
        assert int(lst[n]) == len(data)
        assert unstuff(lines) == data
    c.cmd("QUIT")


def test_top(three):
    c = session(three)
    n = number_of(c, "msg two")
    data = file_with(three, b"Subject: msg two\r\n").read_bytes()
    head, body = data.split(b"\r\n\r\n", 1)
    _, lines = c.cmd_multi(f"TOP {n} 0")
    assert unstuff(lines) == head + b"\r\n\r\n"
    _, lines = c.cmd_multi(f"TOP {n} 2")
    assert unstuff(lines) == head + b"\r\n\r\nline 1\r\nline 2\r\n"
    # More lines than the body has: the whole message.
    _, lines = c.cmd_multi(f"TOP {n} 100")
    assert unstuff(lines) == data
    for bad in ("", f"{n}", f"{n} -1", f"{n} x", f"0 1", "99 0",
                f"{n} 4294967296"):
        assert c.cmd(f"TOP {bad}").startswith("-ERR"), bad
    assert c.cmd("NOOP") == "+OK"


def test_dele_rset_and_quit_update(three):
    c = session(three)
    before = {p.name.split(":")[0] for p in three.maildir_files(ALICE)}
    n = number_of(c, "msg two")
    r = c.cmd(f"DELE {n}")
    assert r.startswith("+OK"), r
    assert c.cmd(f"LIST {n}").startswith("-ERR")
    assert c.cmd(f"UIDL {n}").startswith("-ERR")
    assert c.cmd(f"RETR {n}").startswith("-ERR")
    assert c.cmd(f"TOP {n} 0").startswith("-ERR")
    assert c.cmd(f"DELE {n}").startswith("-ERR")
    # Not renumbered; STAT and LIST leave it out.
    assert n not in listing(c) and len(listing(c)) == 2
    assert c.cmd("STAT").startswith("+OK 2 ")
    # RSET restores it.
    r = c.cmd("RSET")
    assert r.startswith("+OK"), r
    assert c.cmd(f"LIST {n}").startswith("+OK")
    assert c.cmd("STAT").startswith("+OK 3 ")
    # Nothing is removed before QUIT.
    assert c.cmd(f"DELE {n}").startswith("+OK")
    assert len(three.maildir_files(ALICE)) == 3
    r = c.cmd("QUIT")
    assert r.startswith("+OK"), r
    assert c.closed()
    files = three.maildir_files(ALICE)
    assert len(files) == 2
    assert not any(b"Subject: msg two\r\n" in p.read_bytes() for p in files)
    assert {p.name.split(":")[0] for p in files} < before


def test_dropped_session_deletes_nothing(three):
    c = session(three)
    uidl = listing(c, "UIDL")
    for n in (1, 2, 3):
        assert c.cmd(f"DELE {n}").startswith("+OK")
    c.close()       # no QUIT: no UPDATE state (RFC 1939 6)
    wait_disconnect_logged(three, 1)
    assert len(three.maildir_files(ALICE)) == 3
    c = session(three)
    assert listing(c, "UIDL") == uidl
    c.cmd("QUIT")


@pytest.mark.parametrize("cmd", ["LIST", "UIDL", "RETR", "DELE"])
def test_invalid_message_numbers(three, cmd):
    c = session(three)
    for arg in ("0", "-1", "99", "abc", "4294967296", "1 2", " 1", "1x",
                "+1", "0x1"):
        r = c.cmd(f"{cmd} {arg}")
        assert r.startswith("-ERR"), (cmd, arg, r)
    # The session goes on, nothing was marked.
    assert c.cmd("STAT").startswith("+OK 3 ")
    assert c.cmd(f"{cmd} 1").startswith("+OK")
    if cmd == "RETR":
        c.multi()
    c.cmd("RSET")
    assert c.cmd("QUIT").startswith("+OK")
    assert len(three.maildir_files(ALICE)) == 3


def test_unknown_commands_and_long_line(pop):
    c = Pop(pop)
    for bad in ("XYZZY", "FOO", "", "12", "LIST\tx"):
        assert c.cmd(bad).startswith("-ERR"), bad
    r = c.cmd("CAPA " + "x" * 295)      # 300 octets
    assert r.startswith("-ERR"), r
    assert c.capa()
    c.stls()
    assert c.login().startswith("+OK")
    for bad in ("XYZZY", "FOO", "STLS", "USER alice", "AUTH PLAIN"):
        assert c.cmd(bad).startswith("-ERR"), bad
    r = c.cmd("NOOP " + "y" * 295)
    assert r.startswith("-ERR"), r
    # A huge line too (discarded while it arrives).
    r = c.cmd("NOOP " + "z" * 100000)
    assert r.startswith("-ERR"), r
    assert c.cmd("NOOP") == "+OK"
    assert c.cmd("noop") == "+OK"       # keywords are case-insensitive
    assert c.cmd("QUIT").startswith("+OK")


def test_too_many_errors_close_the_session(server):
    p110 = free_port()
    srv = server(extra={"pop3": {"listen": f"127.0.0.1:{p110}"}},
                 limits={"max_errors": 3})
    srv.p110 = p110
    c = Pop(srv)
    replies = [c.cmd("XYZZY") for _ in range(3)]
    assert all(r.startswith("-ERR") for r in replies)
    assert c.closed()


def test_byte_stuffing(pop):
    body = (".hidden\r\n..two dots\r\n.\r\nnormal\r\n. space\r\n"
            "...\r\nend\r\n")
    deliver(pop, [message("dots", body)])
    data = pop.maildir_files(ALICE)[0].read_bytes()
    assert b"\r\n.hidden\r\n..two dots\r\n.\r\nnormal" in data
    c = session(pop)
    first, lines = c.cmd_multi("RETR 1")
    wire = b"\r\n".join(lines)
    assert (b"\r\n..hidden\r\n...two dots\r\n..\r\nnormal\r\n.. space\r\n"
            b"....\r\nend") in wire
    assert unstuff(lines) == data
    # TOP stuffs too.
    _, lines = c.cmd_multi("TOP 1 3")
    assert lines[-3:] == [b"..hidden", b"...two dots", b".."]
    c.cmd("QUIT")
    p = pop_lib(pop)
    resp, lines, octets = p.retr(1)
    assert resp.startswith(b"+OK")
    assert b"\r\n".join(lines) + b"\r\n" == data
    assert octets == len(data)
    assert lines[-7:] == [b".hidden", b"..two dots", b".", b"normal",
                          b". space", b"...", b"end"]
    p.quit()


def test_stuffing_across_read_chunks(pop):
    """Lines of "." every 3 octets, at three offsets: in one of the
    messages a dot line starts at each 16 KiB boundary of the file."""
    msgs = [message(f"chunk {k}", "a" * k + "\r\n" + ".\r\n" * 15000)
            for k in (1, 2, 3)]
    deliver(pop, msgs)
    c = session(pop)
    for k in (1, 2, 3):
        n = number_of(c, f"chunk {k}")
        data = file_with(pop, f"Subject: chunk {k}\r\n".encode()).read_bytes()
        first, lines = c.cmd_multi(f"RETR {n}")
        assert first == f"+OK {len(data)} octets"
        assert unstuff(lines) == data
        assert lines.count(b"..") == 15000
    c.cmd("QUIT")


def test_message_renamed_or_removed_under_the_session(three):
    """Another Maildir reader (IMAP, mutt) may set flags (a rename) or
    remove a file while a POP3 session holds its snapshot."""
    c = session(three)
    n_one, n_two = number_of(c, "msg one"), number_of(c, "msg two")
    one = file_with(three, b"Subject: msg one\r\n")
    data = one.read_bytes()
    base = one.name.split(":")[0]
    one.rename(one.parent / (base + ":2,S"))
    first, lines = c.cmd_multi(f"RETR {n_one}")
    assert first == f"+OK {len(data)} octets"
    assert unstuff(lines) == data
    file_with(three, b"Subject: msg two\r\n").unlink()
    r = c.cmd(f"RETR {n_two}")
    assert r.startswith("-ERR"), r
    assert c.cmd("NOOP") == "+OK"
    assert c.cmd(f"DELE {n_two}").startswith("+OK")
    assert c.cmd(f"DELE {n_one}").startswith("+OK")
    r = c.cmd("QUIT")
    assert r.startswith("+OK"), r
    assert c.closed()
    files = three.maildir_files(ALICE)
    assert len(files) == 1
    assert b"Subject: msg three\r\n" in files[0].read_bytes()


# ---- UIDL stability ----------------------------------------------------------

def test_uidl_stable_across_sessions_and_restart(three):
    c = session(three)
    uidl1 = listing(c, "UIDL")
    by_subject = {s: uidl1[number_of(c, s)]
                  for s in ("msg one", "msg two", "msg three")}
    c.cmd("QUIT")
    c = session(three, tls="ssl")
    assert listing(c, "UIDL") == uidl1
    c.cmd("QUIT")
    three.restart()
    c = session(three)
    assert listing(c, "UIDL") == uidl1
    c.cmd("QUIT")
    # A new message gets a new UIDL; the old ones stay.
    deliver(three, [message("msg four")])
    c = session(three)
    uidl2 = listing(c, "UIDL")
    assert len(uidl2) == 4
    n4 = number_of(c, "msg four")
    assert uidl2[n4] not in uidl1.values()
    assert {v for k, v in uidl2.items() if k != n4} == set(uidl1.values())
    # Deleting one keeps the others' UIDLs.
    assert c.cmd(f"DELE {number_of(c, 'msg one')}").startswith("+OK")
    c.cmd("QUIT")
    assert c.closed()
    c = session(three)
    uidl3 = set(listing(c, "UIDL").values())
    assert uidl3 == set(uidl2.values()) - {by_subject["msg one"]}
    c.cmd("QUIT")


# ---- lock, snapshot ------------------------------------------------------------

def test_maildrop_lock(pop):
    deliver(pop, [message("locked")])
    a = session(pop)
    b = Pop(pop, pop.p995, tls=True)
    r = b.login()
    assert r.startswith("-ERR [IN-USE]"), r
    # Via SASL as well, and for the other listener.
    r = b.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORD}"))
    assert r.startswith("-ERR [IN-USE]"), r
    c = Pop(pop)
    c.stls()
    assert c.login().startswith("-ERR [IN-USE]")
    # Another user is not locked out.
    d = session(pop, BOB)
    assert d.cmd("STAT") == "+OK 0 0"
    # After the first QUITs, the second logs in (same connection).
    assert a.cmd("QUIT").startswith("+OK")
    assert a.closed()
    r = b.login()
    assert r.startswith("+OK"), r
    assert b.cmd("STAT").startswith("+OK 1 ")
    b.cmd("QUIT")
    d.cmd("QUIT")


def test_login_again_right_after_quit(pop):
    """The maildrop is free once the QUIT reply is read: a client that
    logs in again at once (fetchmail polling) is not told IN-USE, after
    a QUIT with or without deletions (UPDATE)."""
    deliver(pop, [message("m%d" % i) for i in range(10)])
    for i in range(20):
        c = session(pop, tls="ssl" if i % 3 == 0 else "stls")
        if i % 2:
            assert c.cmd("DELE 1").startswith("+OK")
        r = c.cmd("QUIT")
        assert r.startswith("+OK"), r
    c = session(pop)
    assert c.cmd("STAT").startswith("+OK 0 ")
    c.cmd("QUIT")


def test_lock_released_when_client_drops(pop):
    a = session(pop)
    a.close()
    wait_disconnect_logged(pop, 1)
    b = session(pop, tls="ssl")
    assert b.cmd("STAT") == "+OK 0 0"
    b.cmd("QUIT")


def test_snapshot_while_smtp_delivers(pop):
    deliver(pop, [message("old one"), message("old two")])
    c = session(pop)
    stat = c.cmd("STAT")
    assert stat.startswith("+OK 2 ")
    uidl = listing(c, "UIDL")
    deliver(pop, [message("arrived during session")])
    assert len(pop.maildir_files(ALICE)) == 3
    assert c.cmd("STAT") == stat
    assert listing(c, "UIDL") == uidl
    assert c.cmd("LIST 3").startswith("-ERR")
    # Deleting everything the session saw leaves the new message alone.
    for n in uidl:
        assert c.cmd(f"DELE {n}").startswith("+OK")
    r = c.cmd("QUIT")
    assert r.startswith("+OK"), r
    assert c.closed()
    files = pop.maildir_files(ALICE)
    assert len(files) == 1
    assert b"Subject: arrived during session" in files[0].read_bytes()
    c = session(pop)
    assert c.cmd("STAT").startswith("+OK 1 ")
    new = listing(c, "UIDL")
    assert set(new.values()).isdisjoint(uidl.values())
    c.cmd("QUIT")


# ---- CAPA, SASL ------------------------------------------------------------

def test_capa_after_tls(pop):
    c = Pop(pop, pop.p995, tls=True)
    caps = c.capa()
    names = [x.split()[0] for x in caps]
    for want in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
                 "SASL", "USER", "IMPLEMENTATION"):
        assert want in names, (want, caps)
    assert "STLS" not in names
    sasl = [x for x in caps if x.split()[0] == "SASL"][0].split()[1:]
    assert {"PLAIN", "LOGIN", "SCRAM-SHA-256"} <= set(sasl), sasl
    # "AUTH" alone lists the same mechanisms (RFC 1734 style).
    _, lines = c.cmd_multi("AUTH")
    assert [l.decode() for l in lines] == sasl
    # RFC 2449 5: the list may differ after login, but stays valid.
    assert c.login().startswith("+OK")
    caps = [x.split()[0] for x in c.capa()]
    assert "TOP" in caps and "UIDL" in caps and "PIPELINING" in caps
    c.cmd("QUIT")
    # poplib reads the same list.
    p = poplib.POP3_SSL(pop.host, pop.p995, timeout=TIMEOUT, context=ctx())
    assert "SASL" in p.capa() and "TOP" in p.capa()
    p.quit()


def test_auth_plain_initial_response_poplib(pop):
    deliver(pop, [message("plain")])
    p = poplib.POP3_SSL(pop.host, pop.p995, timeout=TIMEOUT, context=ctx())
    resp = p._shortcmd("AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORD}"))
    assert resp.startswith(b"+OK")
    assert p.stat()[0] == 1
    p.quit()


def test_auth_plain_without_initial_response(pop):
    c = Pop(pop, pop.p995, tls=True)
    r = c.cmd("AUTH PLAIN")
    assert r.rstrip() == "+", r
    r = c.cmd(b64(f"\0{ALICE}\0{PASSWORD}"))
    assert r.startswith("+OK"), r
    assert c.cmd("STAT") == "+OK 0 0"


def test_auth_login(pop):
    c = Pop(pop, pop.p995, tls=True)
    r = c.cmd("AUTH LOGIN")
    assert r.startswith("+ "), r
    r = c.cmd(b64(ALICE))
    assert r.startswith("+ "), r
    r = c.cmd(b64(PASSWORD))
    assert r.startswith("+OK"), r
    assert c.cmd("STAT") == "+OK 0 0"
    # Logged in: AUTH is no command any more.
    assert c.cmd("AUTH PLAIN").startswith("-ERR")


def test_auth_cancel_and_bad_input(pop):
    c = Pop(pop, pop.p995, tls=True)
    assert c.cmd("AUTH LOGIN").startswith("+ ")
    r = c.cmd("*")
    assert r.startswith("-ERR"), r
    assert c.cmd("AUTH PLAIN").startswith("+")
    assert c.cmd("*").startswith("-ERR")
    assert c.cmd("AUTH CRAM-MD5").startswith("-ERR")
    assert c.cmd("AUTH PLAIN !!!notbase64!!!").startswith("-ERR")
    # Back in AUTHORIZATION, the session works.
    r = c.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORD}"))
    assert r.startswith("+OK"), r


def test_auth_wrong_password_resp_code(pop):
    c = Pop(pop, pop.p995, tls=True)
    r = c.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0nope"))
    assert r.startswith("-ERR [AUTH]"), r


def scram_pop3(c, user, password):
    """RFC 5802/7677 SCRAM-SHA-256 over POP3 AUTH (RFC 5034): challenges
    come as "+ base64", responses go as base64 lines. Returns the last
    reply line."""
    nonce = b64(os.urandom(18))
    first_bare = f"n={user},r={nonce}"
    r = c.cmd("AUTH SCRAM-SHA-256 " + b64("n,," + first_bare))
    if not r.startswith("+ "):
        return r
    server_first = base64.b64decode(r[2:]).decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    assert attrs["r"].startswith(nonce) and len(attrs["r"]) > len(nonce)
    salt = base64.b64decode(attrs["s"])
    iters = int(attrs["i"])
    assert iters >= 4096
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iters)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    without_proof = f"c={b64('n,,')},r={attrs['r']}"
    auth_msg = f"{first_bare},{server_first},{without_proof}".encode()
    sig = hmac.new(stored_key, auth_msg, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, sig))
    r = c.cmd(b64(f"{without_proof},p={b64(proof)}"))
    if not r.startswith("+ "):
        return r
    server_final = base64.b64decode(r[2:]).decode()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    want = hmac.new(server_key, auth_msg, hashlib.sha256).digest()
    assert server_final == "v=" + b64(want)
    return c.cmd("")


def test_scram_sha_256(pop):
    deliver(pop, [message("scram")])
    c = Pop(pop, pop.p995, tls=True)
    r = scram_pop3(c, ALICE, PASSWORD)
    assert r.startswith("+OK"), r
    assert c.cmd("STAT").startswith("+OK 1 ")
    c.cmd("QUIT")
    c2 = Pop(pop)
    c2.stls()
    r = scram_pop3(c2, ALICE, "wrong")
    assert r.startswith("-ERR [AUTH]"), r
    assert c2.cmd("CAPA").startswith("+OK")


# ---- pipelining --------------------------------------------------------------

def test_pipelining(three):
    c = session(three)
    c.send("STAT\r\nLIST\r\nUIDL\r\nNOOP\r\n")
    assert c.reply().startswith("+OK 3 ")
    assert c.reply().startswith("+OK")
    assert len(c.multi()) == 3
    assert c.reply().startswith("+OK")
    assert len(c.multi()) == 3
    assert c.reply() == "+OK"
    # A RETR of ~470 KB between others, all in one write.
    n = number_of(c, "msg three")
    data = file_with(three, b"Subject: msg three\r\n").read_bytes()
    c.send(f"NOOP\r\nRETR {n}\r\nLIST {n}\r\nQUIT\r\n")
    assert c.reply() == "+OK"
    assert c.reply() == f"+OK {len(data)} octets"
    assert unstuff(c.multi()) == data
    assert c.reply() == f"+OK {n} {len(data)}"
    assert c.reply().startswith("+OK")
    assert c.closed()


def test_pipelined_login(pop):
    """Commands sent with USER/PASS wait for the (slow) password check."""
    deliver(pop, [message("p")])
    c = Pop(pop, pop.p995, tls=True)
    c.send(f"USER {ALICE}\r\nPASS {PASSWORD}\r\nSTAT\r\nUIDL 1\r\nQUIT\r\n")
    assert c.reply().startswith("+OK")
    assert c.reply().startswith("+OK")
    assert c.reply().startswith("+OK 1 ")
    assert c.reply().startswith("+OK 1 ")
    assert c.reply().startswith("+OK")
    assert c.closed()


# ---- real clients ------------------------------------------------------------

def run_client(argv, home, timeout=60):
    env = dict(os.environ, HOME=str(home))
    return subprocess.run(argv, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.skipif(shutil.which("fetchmail") is None,
                    reason="fetchmail not installed")
@pytest.mark.parametrize("mode,keep", [("stls", True), ("stls", False),
                                       ("ssl", False)])
def test_fetchmail(pop, tmp_path, mode, keep):
    subjects = [f"fm {i}" for i in range(4)]
    deliver(pop, [message(s, BODY5 + ".dot line\r\n") for s in subjects])
    home = tmp_path / "fmhome"
    home.mkdir()
    out = tmp_path / "fetched.mbox"
    port = pop.p110 if mode == "stls" else pop.p995
    tls = "sslproto TLS1.2+" if mode == "stls" else "ssl"
    rc = home / "fetchmailrc"
    rc.write_text(
        "set no bouncemail\n"
        f"poll 127.0.0.1 with proto POP3 port {port} timeout 30\n"
        f'  user "{ALICE}" there with password "{PASSWORD}" '
        f'is "{getpass.getuser()}" here\n'
        f"  {tls} no sslcertck {'keep' if keep else 'no keep'}\n"
        f'  mda "cat >> {out}"\n')
    rc.chmod(0o600)
    r = run_client(["fetchmail", "-v", "--nodetach", "--nosyslog",
                    "-f", str(rc)], home)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log
    got = out.read_bytes()
    for s in subjects:
        assert got.count(f"Subject: {s}\n".encode()) == 1, log
    assert got.count(b"\n.dot line\n") == 4
    if mode == "stls":
        assert "STLS" in log
    left = pop.maildir_files(ALICE)
    assert len(left) == (4 if keep else 0), log
    if not keep:
        assert "event=update deleted=4" in pop.log_text()


@pytest.mark.skipif(shutil.which("getmail") is None,
                    reason="getmail6 not installed")
@pytest.mark.parametrize("dest", ["Maildir", "Mboxrd"])
def test_getmail(pop, tmp_path, request, dest):
    """getmail6's SimplePOP3SSLRetriever checks no certificate unless
    ca_certs is set (it then uses poplib.POP3_SSL's default context), so
    the self-signed certificate needs no option."""
    subjects = [f"gm {i}" for i in range(3)]
    deliver(pop, [message(s, ".dot\r\nbody\r\n") for s in subjects])
    gmdir = tmp_path / "getmail"
    gmdir.mkdir()
    out = tmp_path
    user_line = ""
    if os.geteuid() == 0:
        # getmail refuses to deliver as root: it delivers as nobody, who
        # cannot enter pytest's 0700 temporary root.
        nobody = pwd.getpwnam("nobody")
        out = Path(tempfile.mkdtemp(prefix="correo-getmail-"))
        request.addfinalizer(lambda: shutil.rmtree(out, ignore_errors=True))
        user_line = "user = nobody\n"
    if dest == "Maildir":
        target = out / "gmmaildir"
        for sub in ("cur", "new", "tmp"):
            (target / sub).mkdir(parents=True)
        path = str(target) + "/"
    else:
        target = out / "gm.mbox"
        target.write_bytes(b"")
        path = str(target)
    if user_line:
        for p in [out] + list(out.rglob("*")):
            os.chown(p, nobody.pw_uid, nobody.pw_gid)
    rc = gmdir / "getmailrc"
    rc.write_text(
        "[retriever]\n"
        "type = SimplePOP3SSLRetriever\n"
        f"server = 127.0.0.1\nport = {pop.p995}\n"
        f"username = {ALICE}\npassword = {PASSWORD}\n"
        "timeout = 30\n\n"
        f"[destination]\ntype = {dest}\npath = {path}\n{user_line}\n"
        "[options]\nverbose = 2\ndelete = true\nread_all = true\n"
        "received = false\ndelivered_to = false\n")
    r = run_client(["getmail", "--rcfile", str(rc), "--getmaildir",
                    str(gmdir)], tmp_path)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log
    if dest == "Maildir":
        got = [p.read_bytes() for p in (target / "new").iterdir()]
        assert len(got) == 3, log
        for s in subjects:
            assert sum(f"Subject: {s}\n".encode() in g for g in got) == 1
        assert all(b"\n.dot\nbody\n" in g for g in got)
    else:
        got = target.read_bytes()
        for s in subjects:
            assert got.count(f"Subject: {s}\n".encode()) == 1, log
        assert got.count(b"\n.dot\nbody\n") == 3
    assert pop.maildir_files(ALICE) == [], log
