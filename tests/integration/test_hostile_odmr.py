"""Hostile input on the odmr listener (RFC 2645): ATRN and AUTH out of
order, AUTH in plaintext, over-long lines, NUL and 8-bit bytes, absurd
ATRN lists, commands pipelined after STARTTLS, a greeting pipelined after
ATRN, a flood of junk commands and a client sending one byte at a time.

customer.test is held for alice and nothing is queued, so an accepted
ATRN ends in 453 and the session goes on. After every case the server
still greets on the odmr and smtp ports within 2 s and logged no crash.

    C: EHLO x / STARTTLS / EHLO x / AUTH PLAIN ...   S: 235
    C: ATRN <hostile list>                           S: 500 / 501 / 450
    C: NOOP                                          S: 250
"""

import base64
import socket
import ssl
import threading
import time

import pytest

from conftest import (LOG_BAD, PASSWORD, TIMEOUT, _Servers, free_port,
                      wait_until)
from test_hostile_imap_pop3 import GREET_WITHIN, greets
from test_odmr import (ALICE, HELD, act_as_server, attempted, connect,
                       login, odmr_server, queue_ids, queue_mail, starttls,
                       tls_context)

LINE_MAX = 510          # ODMR_LINE_MAX: the command line without CRLF
AUTH_LINE_MAX = 12288   # ODMR_AUTH_LINE_MAX: a SASL response line


def short(v):
    return repr(v[:24]) + ("..%d" % len(v) if len(v) > 24 else "")


def make_server(make, **limits):
    """A server (make: the server fixture, or _Servers.make) with an odmr
    listener and customer.test held for alice."""
    port = free_port()
    limits.setdefault("max_errors", 100000)
    s = make(extra={"odmr": {"listen": "127.0.0.1:%d" % port}},
             limits=limits)
    s.odmr_port = port
    s.cli("odmr", "add", HELD, ALICE)
    return s


@pytest.fixture(scope="module")
def srv(tmp_path_factory, _template_root):
    servers = _Servers(tmp_path_factory.mktemp("hostile-odmr"),
                       _template_root)
    yield make_server(servers.make)
    servers.finish()


def healthy(s):
    assert s.proc.poll() is None, s.log_text()[-3000:]
    greets(s.host, s.odmr_port, b"220 ")
    greets(s.host, s.port, b"220 ")
    log = s.log_text()
    for bad in LOG_BAD:
        assert bad not in log, log[-3000:]


def plain_token(user=ALICE, password=PASSWORD):
    return base64.b64encode(("\0%s\0%s" % (user, password)).encode())


def in_step(c):
    """The session still answers, and in order."""
    assert c.cmd("NOOP") == (250, "2.0.0 Ok")


# ---- order: ATRN before AUTH, AUTH before TLS ------------------------------

@pytest.mark.parametrize("arg", [
    "", " " + HELD, " ,,,", " " + "a" * 300, " " + ",".join(["d.test"] * 65),
], ids=short)
def test_atrn_before_auth(srv, arg):
    c = connect(srv)
    assert c.cmd("ATRN" + arg)[0] == 503        # no EHLO yet
    assert c.cmd("EHLO client.customer.test")[0] == 250
    code, text = c.cmd("ATRN" + arg)            # RFC 2645 5.2.1
    assert (code, text) == (530, "5.7.0 Authentication required")
    starttls(c)
    assert c.cmd("ATRN" + arg)[0] == 530        # TLS is not AUTH
    in_step(c)
    assert c.cmd("QUIT")[0] == 221
    assert c.closed(TIMEOUT)
    healthy(srv)


@pytest.mark.parametrize("line", [
    b"AUTH PLAIN " + plain_token(),
    b"AUTH PLAIN",
    b"AUTH LOGIN",
    b"AUTH SCRAM-SHA-256",
    b"AUTH X" + b"Y" * 400,
    b"AUTH",
], ids=short)
def test_auth_in_plaintext_is_refused(srv, line):
    c = connect(srv)
    code, text = c.cmd("EHLO client.customer.test")
    assert not any(l.startswith("AUTH") for l in text.splitlines())
    code, text = c.cmd(line)
    # RFC 4954 4: 538 before TLS, whatever the mechanism or syntax;
    # never a 334 that would invite a password in the clear.
    assert code == 538, (code, text)
    assert c.cmd("ATRN")[0] == 530
    in_step(c)
    healthy(srv)


def test_auth_twice_and_starttls_inside_tls(srv):
    c = login(srv)
    assert c.cmd(b"AUTH PLAIN " + plain_token())[0] == 503
    assert c.cmd("STARTTLS")[0] == 503
    assert c.cmd("STARTTLS now")[0] == 501
    assert c.cmd("ATRN " + HELD)[0] == 453
    healthy(srv)


# ---- over-long lines --------------------------------------------------------

def test_line_length_limit(srv):
    c = connect(srv)
    line = "NOOP " + "x" * (LINE_MAX - 5)
    assert c.cmd(line)[0] == 250                 # 510 octets: taken
    assert c.cmd(line + "x") == (500, "5.5.2 Error: line too long")
    in_step(c)
    # One reply per over-long line, however long: the rest of it, QUIT
    # included, is skipped up to its end.
    c.send(b"NOOP " + b"QUIT\r\n".rjust(200000, b"y"))
    assert c.reply()[0] == 500
    in_step(c)
    healthy(srv)


def test_line_without_end(srv):
    c = connect(srv)
    for _ in range(20):
        c.send(b"z" * 65536)
    c.send(b"\r\n")
    code, text = c.reply()
    assert code == 500, text
    in_step(c)
    healthy(srv)


def test_overlong_sasl_response(srv):
    c = connect(srv)
    starttls(c)
    code, _ = c.cmd("AUTH PLAIN")
    assert code == 334
    code, text = c.cmd(b"A" * (AUTH_LINE_MAX + 1))
    assert code == 500, text
    # The exchange was abandoned: not authenticated, back in command mode.
    assert c.cmd("ATRN")[0] == 530
    in_step(c)
    healthy(srv)


@pytest.mark.parametrize("n", [1000, 200], ids=lambda n: "%d-domains" % n)
def test_atrn_list_longer_than_a_line(srv, n):
    c = login(srv)
    line = "ATRN " + ",".join("d%d.test" % i for i in range(n))
    assert len(line) > LINE_MAX
    assert c.cmd(line) == (500, "5.5.2 Error: line too long")
    in_step(c)
    healthy(srv)


# ---- NUL and 8-bit ----------------------------------------------------------

@pytest.mark.parametrize("line", [
    b"\x00", b"\x00\x00\x00", b"NOOP\x00", b"QUIT\x00", b"QU\x00IT",
    b"EHLO client\x00.customer.test", b"RSET\x00junk",
    b"STARTTLS\x00", b"ATRN\x00", b"ATRN " + HELD.encode() + b"\x00,x.test",
    b"\xff\xfe\xfd", b"\x80", b"N\xc3\x96OP", b"\x1b[2J\x07", b"\x7f",
    b"ATRN\xa0" + HELD.encode(), b"\xef\xbb\xbfEHLO x",
], ids=short)
def test_nul_and_8bit_junk_is_no_command(srv, line):
    """A line with a NUL is refused whole, never read up to the NUL; 8-bit
    and control junk is no command: 500, as RFC 5321 4.2.4 has it (502
    is for commands known and not implemented)."""
    c = connect(srv)
    assert c.cmd(line) == (500, "5.5.2 Error: command not recognized")
    in_step(c)
    healthy(srv)


def test_nul_after_auth(srv):
    c = login(srv)
    for line in (b"ATRN " + HELD.encode() + b"\x00", b"ATRN\x00 x.test",
                 b"QUIT\x00"):
        assert c.cmd(line)[0] == 500, line
    assert c.cmd("ATRN " + HELD)[0] == 453
    healthy(srv)


@pytest.mark.parametrize("name", [
    b"caf\xc3\xa9.customer.test", b"\xff\xfe", b"client\x7f", b"a\x01b",
], ids=short)
def test_8bit_ehlo_name_is_refused(srv, name):
    """The name would go back in the 250 reply, and there is no
    SMTPUTF8 here."""
    c = connect(srv)
    assert c.cmd(b"EHLO " + name)[0] == 501
    assert c.cmd("AUTH PLAIN")[0] == 503        # still no EHLO
    healthy(srv)


def test_smtp_commands_are_not_implemented(srv):
    c = connect(srv)
    for verb in ("HELO x", "MAIL FROM:<a@b.test>", "RCPT TO:<a@b.test>",
                 "DATA", "BDAT 10 LAST", "VRFY x", "EXPN x", "HELP",
                 "ETRN " + HELD, "TURN"):
        assert c.cmd(verb)[0] == 502, verb
    for junk in ("XYZZY", "EHLOX x", "ATRNX", "QUITE", "NOOP\tx"):
        assert c.cmd(junk)[0] == 500, junk
    healthy(srv)


# ---- the ATRN list ----------------------------------------------------------

ATRN_CASES = [
    ("ATRN", 453),                              # all of alice's domains
    ("ATRN " + HELD, 453),
    ("ATRN " + HELD.upper(), 453),
    ("ATRN  " + HELD + " , " + HELD + " ", 453),
    ("ATRN " + ",".join([HELD] * 30), 453),
    ("ATRN ", 501),                             # a space and no name
    ("ATRN ,", 501),
    ("ATRN ,,,,,,,,,,", 501),
    ("ATRN " + "," * 500, 501),
    ("ATRN " + HELD + ",", 501),
    ("ATRN ," + HELD, 501),
    ("ATRN " + HELD + ",," + HELD, 501),
    ("ATRN " + HELD + " other.test", 501),
    ("ATRN " + HELD + ";other.test", 501),
    ("ATRN <" + HELD + ">", 501),
    ("ATRN [127.0.0.1]", 501),
    ("ATRN " + "a" * 256, 501),                 # over 255 octets
    ("ATRN " + "a" * 255, 450),                 # a name, not alice's
    ("ATRN " + ".".join(["l" * 63] * 4)[:255], 450),
    ("ATRN " + "l" * 200 + ".test", 450),       # a 200-octet label
    ("ATRN " + ",".join("d%d" % i for i in range(65)), 501),
    ("ATRN " + ",".join("d%d" % i for i in range(64)), 450),
    ("ATRN " + ",".join([HELD[:1]] * 65), 501),  # repeats count too
    ("ATRN " + HELD + ",other.test", 450),
    ("ATRN other.test", 450),
    ("ATRN example.test", 450),                 # local, not held
]


@pytest.mark.parametrize("line,want", ATRN_CASES, ids=lambda v: short(v)
                         if isinstance(v, str) else str(v))
def test_hostile_atrn_list(srv, line, want):
    c = login(srv)
    assert len(line) <= LINE_MAX
    code, text = c.cmd(line)
    assert code == want, (code, text)
    if code == 501:
        assert text == "5.5.4 Syntax: ATRN [domain[,domain...]]"
    if code == 450:
        assert text.startswith("4.7.1 ATRN request refused")
    in_step(c)
    healthy(srv)


@pytest.mark.parametrize("line", [
    b"ATRN caf\xc3\xa9.test", b"ATRN \xff", b"ATRN " + HELD.encode() +
    b",\x80", b"ATRN \t" + HELD.encode(), b"ATRN " + HELD.encode() + b"\x0b",
], ids=short)
def test_atrn_list_with_8bit_and_controls(srv, line):
    c = login(srv)
    assert c.cmd(line)[0] == 501
    in_step(c)
    healthy(srv)


# ---- STARTTLS injection -----------------------------------------------------

def test_injected_plaintext_after_starttls_is_discarded(srv):
    """CVE-2011-0411: what follows STARTTLS in the same packet is never
    read as commands inside TLS, least of all an AUTH and an ATRN."""
    c = connect(srv)
    assert c.cmd("EHLO client.customer.test")[0] == 250
    c.send(b"STARTTLS\r\nEHLO evil.test\r\nAUTH PLAIN " + plain_token() +
           b"\r\nATRN " + HELD.encode() + b"\r\nHELP\r\n")
    assert c.reply()[0] == 220
    assert c.buf == b""
    c.sock = tls_context().wrap_socket(c.sock)
    # Had anything been injected, its replies would come first.
    assert c.cmd("NOOP") == (250, "2.0.0 Ok")
    assert c.cmd("ATRN")[0] == 503          # the EHLO was not taken either
    assert c.cmd("EHLO client.customer.test")[0] == 250
    assert c.cmd("ATRN")[0] == 530          # nor the AUTH
    c.sock.settimeout(0.5)
    with pytest.raises((socket.timeout, ssl.SSLError, TimeoutError)):
        extra = c.sock.recv(100)
        if not extra:
            raise socket.timeout
    assert "tls-injection-discarded" in srv.log_text()
    healthy(srv)


def test_client_hello_pipelined_with_starttls(srv):
    """A ClientHello sent with STARTTLS is plaintext too: discarded with
    the rest; the server waits for the next one."""
    c = connect(srv)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    early = tls_context().wrap_bio(incoming, outgoing)
    with pytest.raises(ssl.SSLWantReadError):
        early.do_handshake()
    c.send(b"STARTTLS\r\n" + outgoing.read())
    assert c.reply()[0] == 220
    assert c.buf == b""
    c.sock = tls_context().wrap_socket(c.sock)
    in_step(c)
    assert "tls-injection-discarded" in srv.log_text()
    healthy(srv)


# ---- the turnaround ---------------------------------------------------------

def nothing_comes(c, seconds=1.0):
    """The server sends nothing for a while (and does not close)."""
    c.sock.settimeout(seconds)
    with pytest.raises((socket.timeout, TimeoutError)):
        extra = c.sock.recv(100)
        raise AssertionError("server sent %r" % extra if extra
                             else "server closed")


# What a client could pipeline after ATRN to play the server of the
# turned-around connection ahead of time: a greeting and the replies to
# EHLO, MAIL, RCPT and DATA.
SCRIPTED = (b"220 evil.test ESMTP scripted\r\n250 evil.test\r\n"
            b"250 2.1.0 ok\r\n250 2.1.5 ok\r\n354 go\r\n"
            b"250 2.0.0 taken\r\n221 bye\r\n")


def test_greeting_pipelined_after_atrn_is_discarded(server):
    """Sent with ATRN, before the 250 that turns the connection around,
    a greeting cannot be the client's answer as the server: it is thrown
    away like plaintext after STARTTLS, and correo waits for the real
    one."""
    s = make_server(server)
    qid = queue_mail(s, ["carol@" + HELD], subject="for carol")
    assert attempted(s, qid)
    c = login(s)
    c.send(b"ATRN " + HELD.encode() + b"\r\n" + SCRIPTED)
    code, text = c.reply()
    assert code == 250 and "reversing" in text, (code, text)
    assert c.buf == b""
    # Had the scripted greeting been taken, EHLO would follow at once.
    nothing_comes(c)
    got = act_as_server(c)
    assert [t["rcpts"] for t in got] == [["carol@" + HELD]]
    assert wait_until(lambda: queue_ids(s) == [], TIMEOUT)
    assert "event=atrn-injection-discarded octets=%d" % len(SCRIPTED) \
        in s.log_text()
    healthy(s)


def test_commands_pipelined_after_atrn_without_mail_are_read(srv):
    """With no mail (453) nothing turns around: what followed ATRN is
    read as commands, as before."""
    c = login(srv)
    c.send(b"ATRN " + HELD.encode() + b"\r\nNOOP\r\nQUIT\r\n")
    assert [r[0] for r in c.replies(3)] == [453, 250, 221]
    assert c.closed(TIMEOUT)
    healthy(srv)


# ---- junk commands ----------------------------------------------------------

def test_many_junk_commands_end_with_421(server):
    """Every refused command counts toward [limits] max_errors."""
    s = make_server(server, max_errors=10)
    c = connect(s)
    junk = [b"XYZZY", b"\xff", b"NOOP\x00", b"MAIL FROM:<a@b.test>",
            b"ATRN", b"EHLO", b"x" * 600, b"STARTTLS now", b"AUTH PLAIN",
            b"VRFY x"]
    # Pipelined, in one write: the replies come in order, the tenth
    # error ends the session.
    c.send(b"".join(l + b"\r\n" for l in junk * 5))
    codes = [c.reply()[0] for _ in range(10)]
    assert codes == [500, 500, 500, 502, 503, 501, 500, 501, 503, 502], codes
    code, text = c.reply()
    assert code == 421 and "too many errors" in text, (code, text)
    assert c.closed(TIMEOUT)
    assert c.buf == b""
    healthy(s)


def test_junk_commands_are_limited(server):
    """Past [limits] max_junk_commands (the smtp listener's), NOOP, RSET
    and EHLO count as errors, then 421: a client cannot hold the session
    open with them forever."""
    s = make_server(server, max_junk_commands=5, max_errors=3)
    c = connect(s)
    for line in ("EHLO client.customer.test", "NOOP", "RSET",
                 "EHLO again.customer.test", "NOOP"):
        assert c.cmd(line)[0] == 250, line      # 5 free
    assert c.cmd("RSET")[0] == 250              # errors: 1
    assert c.cmd("NOOP")[0] == 250              # 2
    code, text = c.cmd("EHLO client.customer.test")     # 3: the last
    assert code == 421 and "too many commands" in text, (code, text)
    assert c.closed(TIMEOUT)
    assert c.buf == b""
    assert "event=too-many-commands junk=8" in s.log_text()
    healthy(s)


def test_junk_commands_and_errors_add_up(server):
    s = make_server(server, max_junk_commands=2, max_errors=3)
    c = connect(s)
    c.send(b"NOOP\r\nNOOP\r\nXYZZY\r\nNOOP\r\nNOOP\r\n")
    codes = [c.reply()[0] for _ in range(5)]
    assert codes == [250, 250, 500, 250, 421], codes
    assert c.closed(TIMEOUT)
    healthy(s)


def test_atrn_polling_is_junk(server):
    """ATRN answered 453 or 450 moves no mail: asked again and again in
    one session, it counts like NOOP (the login took 4: EHLO, STARTTLS,
    EHLO, AUTH)."""
    s = make_server(server, max_junk_commands=7, max_errors=2)
    c = login(s)
    assert c.cmd("ATRN " + HELD)[0] == 453      # 5
    assert c.cmd("ATRN other.test")[0] == 450   # 6
    assert c.cmd("ATRN")[0] == 453              # 7
    assert c.cmd("ATRN " + HELD)[0] == 453      # 8, errors: 1
    code, text = c.cmd("ATRN " + HELD)
    assert code == 421 and "too many commands" in text, (code, text)
    assert c.closed(TIMEOUT)
    healthy(s)


def test_junk_limit_default(server):
    """Without the key: 100 free, then each counts toward max_errors
    (default 20)."""
    s = odmr_server(server)
    c = connect(s)
    c.send(b"NOOP\r\n" * 120)
    codes = [c.reply()[0] for _ in range(120)]
    assert codes == [250] * 119 + [421], codes
    assert c.closed(TIMEOUT)
    healthy(s)


def test_errors_are_counted_after_auth_too(server):
    s = make_server(server, max_errors=3)
    c = login(s)
    assert c.cmd("ATRN ,")[0] == 501
    assert c.cmd("ATRN " + "a" * 256)[0] == 501
    code, text = c.cmd("ATRN ,,")
    assert code == 501
    assert c.reply()[0] == 421
    assert c.closed(TIMEOUT)
    healthy(s)


# ---- one byte at a time -----------------------------------------------------

def test_one_byte_at_a_time(srv):
    """A command dribbled one octet at a time is read whole, and does not
    hold up the other clients."""
    slow = connect(srv)
    stop = threading.Event()
    line = b"EHLO client.customer.test\r\nNOOP " + b"x" * 400 + b"\r\n"

    def dribble():
        for i in range(len(line)):
            if stop.is_set():
                return
            slow.send(line[i:i + 1])
            time.sleep(0.002)
    t = threading.Thread(target=dribble)
    t.start()
    try:
        worst = 0
        while t.is_alive():
            worst = max(worst, greets(srv.host, srv.odmr_port, b"220 "))
            c = connect(srv)
            t0 = time.monotonic()
            in_step(c)
            worst = max(worst, time.monotonic() - t0)
            c.close()
        assert worst < GREET_WITHIN, worst
    finally:
        stop.set()
        t.join()
    assert slow.reply()[0] == 250           # EHLO
    assert slow.reply()[0] == 250           # NOOP
    in_step(slow)
    healthy(srv)


def test_one_byte_at_a_time_past_the_limit(srv):
    slow = connect(srv)
    for b in b"NOOP " + b"y" * LINE_MAX:
        slow.send(bytes([b]))
    slow.send(b"\r\n")
    assert slow.reply() == (500, "5.5.2 Error: line too long")
    in_step(slow)
    healthy(srv)
