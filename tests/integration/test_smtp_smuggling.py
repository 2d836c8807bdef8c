"""SMTP smuggling (CVE-2023-51764/51765/51766 class).

A client hides a second transaction behind an end-of-data sequence that some
servers accept and others do not (bare LF, bare CR, NUL before the dot).
correo must see exactly one message, ended only by <CRLF>.<CRLF>, refuse it
with 550 5.6.0 after that real end (notes/SMTP_REPLIES.md), deliver nothing,
and stay in step with the client. The same for BDAT chunks.
"""

import re
import socket
import time

import pytest

from conftest import TIMEOUT

ALICE = "alice@example.test"
BOB = "bob@example.test"

SMUGGLED = (b"MAIL FROM:<evil@remote.test>\r\n"
            b"RCPT TO:<bob@example.test>\r\n"
            b"DATA\r\n"
            b"smuggled\r\n")
REAL_END = b"\r\n.\r\n"

VARIANTS = {
    "lf-dot-lf": b"\n.\n",
    "lf-dot-crlf": b"\n.\r\n",
    "cr-dot-cr": b"\r.\r",
    "crlf-dot-cr": b"\r\n.\r",
    "cr-dot-crlf": b"\r.\r\n",
    "crlf-dot-lf": b"\r\n.\n",
    "lf-dot-cr": b"\n.\r",
    "crlf-nul-dot-crlf": b"\r\n\x00.\r\n",
}


def session(srv):
    c = srv.raw()
    c.greeting()
    code, text = c.cmd("EHLO client.example.net")
    assert code == 250, (code, text)
    return c


def begin(c, rcpt=ALICE):
    assert c.cmd("MAIL FROM:<sender@client.example.net>")[0] == 250
    code, text = c.cmd("RCPT TO:<%s>" % rcpt)
    assert code == 250, (code, text)


def assert_in_sync(c):
    """The next reply is the one to our NOOP, and nothing else is pending:
    a server that ran the smuggled commands would have queued replies."""
    code, text = c.cmd("NOOP")
    assert (code, text[:5]) == (250, "2.0.0"), (code, text)
    c.sock.settimeout(0.1)
    try:
        extra = c.sock.recv(4096)
    except socket.timeout:
        extra = b""
    assert c.buf + extra == b"", "unexpected replies: %r" % (c.buf + extra)
    assert c.cmd("RSET")[0] == 250
    code, _ = c.cmd("QUIT")
    assert code == 221


def assert_nothing_delivered(srv):
    # Called after later replies were read: any delivery would be done.
    files = srv.all_maildir_files()
    assert files == [], [f.read_bytes()[:300] for f in files]


def assert_refused_5_6_0(c):
    code, text = c.reply()
    assert code == 550 and text.startswith("5.6.0"), (code, text)


def split_trace(data):
    """(trace headers, rest) of a stored message: Return-Path and the
    Received field with its folded lines."""
    assert data.startswith(b"Return-Path: <"), data[:200]
    lines = data.split(b"\r\n")
    assert lines[1].startswith(b"Received: "), data[:400]
    i = 2
    while lines[i][:1] in (b"\t", b" "):
        i += 1
    trace = b"\r\n".join(lines[:i]) + b"\r\n"
    return trace, data[len(trace):]


def send_slowly(c, data):
    """One octet per segment, so no end-of-data test can rely on seeing
    the whole sequence in one read."""
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i in range(len(data)):
        c.send(data[i:i + 1])
        time.sleep(0.001)


# -- DATA -----------------------------------------------------------------

@pytest.mark.parametrize("split", [False, True], ids=["whole", "bytewise"])
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_data_smuggling_is_one_refused_message(server, name, split):
    srv = server()
    c = session(srv)
    begin(c)
    assert c.cmd("DATA")[0] == 354
    head = b"From: <sender@client.example.net>\r\nSubject: hi\r\n\r\nhello"
    tail = VARIANTS[name] + SMUGGLED + REAL_END
    c.send(head)
    if split:
        send_slowly(c, tail)
    else:
        c.send(tail)
    # One reply only, after the real end.
    assert_refused_5_6_0(c)
    assert_in_sync(c)
    c.close()
    assert_nothing_delivered(srv)
    assert srv.maildir_files(BOB) == [] and srv.maildir_files(ALICE) == []


def test_data_smuggling_pipelined_commands_stay_in_sync(server):
    """MAIL, RCPT, DATA and the data with every variant in one write, then
    the real end and NOOP pipelined behind it."""
    srv = server()
    c = session(srv)
    for name in sorted(VARIANTS):
        c.send(b"MAIL FROM:<sender@client.example.net>\r\n"
               b"RCPT TO:<alice@example.test>\r\nDATA\r\n")
        assert [r[0] for r in c.replies(3)] == [250, 250, 354], name
        c.send(b"Subject: " + name.encode() + b"\r\n\r\nx" + VARIANTS[name]
               + SMUGGLED + REAL_END + b"NOOP\r\n")
        assert_refused_5_6_0(c)
        code, text = c.reply()
        assert (code, text[:5]) == (250, "2.0.0"), (name, code, text)
    assert_in_sync(c)
    c.close()
    assert_nothing_delivered(srv)


def test_dot_stuffed_lines_are_delivered_whole(server):
    srv = server()
    c = session(srv)
    begin(c, BOB)
    assert c.cmd("DATA")[0] == 354
    stored = (b"Subject: dots\r\n\r\n"
              b"line1\r\n"
              b".\r\n"                 # sent as "..": not the end
              b"..\r\n"
              b".\r\nMAIL FROM:<evil@remote.test>\r\n"
              b". leading dot and space\r\n"
              b"end\r\n")
    wire = (b"Subject: dots\r\n\r\n"
            b"line1\r\n"
            b"..\r\n"
            b"...\r\n"
            b"..\r\nMAIL FROM:<evil@remote.test>\r\n"
            b".. leading dot and space\r\n"
            b"end\r\n"
            b".\r\n")
    c.send(wire)
    code, text = c.reply()
    assert code == 250 and text.startswith("2.0.0 Ok: queued as"), (
        code, text)
    assert_in_sync(c)
    c.close()
    files = srv.maildir_files(BOB)
    assert len(files) == 1, files
    _, body = split_trace(files[0].read_bytes())
    assert body == stored, body
    assert srv.maildir_files(ALICE) == []


def test_dot_stuffing_through_smtplib(server):
    """A real client (smtplib) stuffs the dots itself."""
    srv = server()
    text = ("Subject: smtplib dots\r\n\r\nbefore\r\n.\r\n..\r\n"
            ".\r\nRCPT TO:<alice@example.test>\r\nafter\r\n")
    with srv.smtp() as s:
        s.ehlo("client.example.net")
        assert s.sendmail("sender@client.example.net", [BOB],
                          text.encode()) == {}
    files = srv.maildir_files(BOB)
    assert len(files) == 1
    _, body = split_trace(files[0].read_bytes())
    assert body == text.encode()
    assert srv.maildir_files(ALICE) == []


# -- BDAT -----------------------------------------------------------------

def bdat(c, chunk, last=False):
    c.send(b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if last else b"") + chunk)
    return c.reply()


BDAT_TAINTED = {
    "bare-lf": [b"Subject: a\r\n\r\nhello\n.\n" + SMUGGLED, b"end\r\n"],
    "bare-cr": [b"Subject: a\r\n\r\nhello\r.\r" + SMUGGLED, b"end\r\n"],
    "nul": [b"Subject: a\r\n\r\nhello\r\n\x00.\r\n" + SMUGGLED, b"end\r\n"],
    "bare-lf-in-last": [b"Subject: a\r\n\r\nhello\r\n", b"x\ny\r\n"],
    # A CR that ends one chunk and is not followed by LF in the next.
    "cr-across-chunks": [b"Subject: a\r\n\r\nhello\r", b"X\r\n"],
    "cr-at-very-end": [b"Subject: a\r\n\r\nhello\r\n", b"end\r"],
    "single-chunk-nul": [b"Subject: a\r\n\r\nhel\x00lo\r\n"],
}


@pytest.mark.parametrize("name", sorted(BDAT_TAINTED))
def test_bdat_with_bare_cr_lf_nul_is_refused_at_last(server, name):
    srv = server()
    c = session(srv)
    begin(c)
    chunks = BDAT_TAINTED[name]
    for ch in chunks[:-1]:
        code, text = bdat(c, ch)
        assert code == 250 and text == "2.0.0 %d octets received" % len(ch), \
            (code, text)
    c.send(b"BDAT %d LAST\r\n" % len(chunks[-1]) + chunks[-1])
    assert_refused_5_6_0(c)
    assert_in_sync(c)
    c.close()
    assert_nothing_delivered(srv)


def test_bdat_crlf_split_across_chunks_is_accepted(server):
    """The positive control: CR at the end of one chunk and LF at the start
    of the next make one CRLF, not a bare CR."""
    srv = server()
    c = session(srv)
    begin(c)
    chunks = [b"Subject: split\r", b"\n\r\nbody line\r", b"\n.\r\n", b"end\r\n"]
    for ch in chunks[:-1]:
        assert bdat(c, ch)[0] == 250
    code, text = bdat(c, chunks[-1], last=True)
    assert code == 250 and re.match(r"2\.0\.0 Ok: queued as [0-9A-F]{16}$",
                                    text, re.I), (code, text)
    assert_in_sync(c)
    c.close()
    files = srv.maildir_files(ALICE)
    assert len(files) == 1
    _, body = split_trace(files[0].read_bytes())
    # BDAT data is not dot-stuffed: the ".\r\n" line is kept as it is.
    assert body == b"".join(chunks)
