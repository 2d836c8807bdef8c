"""SMTP commands and replies of correo, checked against notes/SMTP_REPLIES.md
and RFC 5321 / 1870 / 2920 / 3030 / 6152 / 6531.

Each test is a short transcript: the command sent and the reply expected.
"""

import re
import shutil
import time

import pytest

from conftest import HOSTNAME, SLOW, TIMEOUT, wait_until

ALICE = "alice@example.test"
BOB = "bob@example.test"
SENDER = "sender@remote.test"
CLIENT = "client.example.net"
QID_RE = re.compile(r"^2\.0\.0 Ok: queued as ([0-9A-Fa-f]{16})$")


# -- helpers ----------------------------------------------------------------

def say(c, line, code, enh=None):
    """Sends one command line; asserts the reply code (and the enhanced
    status code that must open the text). Returns the reply text."""
    got_code, text = c.cmd(line)
    assert got_code == code, "C: %r\nS: %d %s" % (line, got_code, text)
    if enh is not None:
        assert text.split(" ", 1)[0] == enh, \
            "C: %r\nS: %d %s (want %s)" % (line, got_code, text, enh)
    return text


def expect(c, code, enh=None, timeout=None):
    """Reads one reply; asserts like say()."""
    got_code, text = c.reply(timeout)
    assert got_code == code, "S: %d %s (want %d)" % (got_code, text, code)
    if enh is not None:
        assert text.split(" ", 1)[0] == enh, \
            "S: %d %s (want %s)" % (got_code, text, enh)
    return text


def session(srv, helo="EHLO"):
    """A RawSMTP past the greeting and EHLO/HELO (None: greeting only)."""
    c = srv.raw()
    c.greeting()
    if helo:
        say(c, "%s %s" % (helo, CLIENT), 250)
    return c


def queued(text):
    m = QID_RE.match(text)
    assert m, "not a queued reply: %r" % text
    return m.group(1)


def no_more_replies(c):
    """No stray reply is pending: the reply to a marker command (VRFY,
    whose 252 no other command here gets) comes next."""
    say(c, "VRFY sync-marker", 252, "2.0.0")


def message(subject, body="Hello.\r\n"):
    return ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\n%s"
            % (SENDER, ALICE, subject, body)).encode()


def split_stored(data):
    """Splits a stored file into (Return-Path line, unfolded Received
    field, the rest). Fails when the trace fields are not on top."""
    lines = data.split(b"\r\n")
    assert lines[0].startswith(b"Return-Path: "), data[:200]
    assert lines[1].startswith(b"Received: "), data[:200]
    i = 2
    while lines[i][:1] in (b" ", b"\t"):
        i += 1
    received = b" ".join(l.strip() for l in lines[1:i])
    return lines[0], received.decode("utf-8"), b"\r\n".join(lines[i:])


def only_file(srv, addr):
    files = srv.maildir_files(addr)
    assert len(files) == 1, "%s: %s" % (addr, files)
    return files[0].read_bytes()


def send_data(c, body):
    """DATA, then body (already dot-stuffed, ending in CRLF), then the
    end marker; returns the queue id."""
    say(c, "DATA", 354)
    c.send(body + b".\r\n")
    return queued(expect(c, 250, "2.0.0"))


def bdat(c, chunk, last=False):
    c.send(b"BDAT %d%s\r\n" % (len(chunk), b" LAST" if last else b"")
           + chunk)


# -- greeting, EHLO, HELO ---------------------------------------------------

def test_greeting(shared_server):
    srv = shared_server
    with srv.raw() as c:
        assert c.reply() == (220, "%s ESMTP correo" % HOSTNAME)


def test_ehlo_capabilities_and_size_value(server):
    srv = server(limits={"max_message_size": 123456})
    with srv.raw() as c:
        c.greeting()
        text = say(c, "EHLO %s" % CLIENT, 250)
        lines = text.split("\n")
        assert lines[0] == "%s Hello %s [127.0.0.1]" % (HOSTNAME, CLIENT)
        assert lines[-1] == "HELP"
        for kw in ("PIPELINING", "SIZE 123456", "8BITMIME",
                   "ENHANCEDSTATUSCODES", "CHUNKING", "SMTPUTF8"):
            assert kw in lines[1:-1], "%s missing from EHLO: %s" % (kw, lines)
        assert all(l.startswith("250-") for l in c.lines_of_last[:-1])
        assert c.lines_of_last[-1] == "250 HELP"


def test_helo(shared_server):
    srv = shared_server
    with srv.raw() as c:
        c.greeting()
        assert say(c, "HELO %s" % CLIENT, 250) == HOSTNAME
        # HELO is enough to send mail.
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")


@pytest.mark.parametrize("line", [
    "EHLO", "HELO", "EHLO ", "EHLO @@@", "HELO foo..bar", "EHLO [1.2.3]",
])
def test_ehlo_helo_bad_argument(shared_server, line):
    srv = shared_server
    with srv.raw() as c:
        c.greeting()
        say(c, line, 501, "5.5.4")
        # Not greeted yet: mail is refused.
        say(c, "MAIL FROM:<%s>" % SENDER, 503, "5.5.1")


def test_ehlo_accepts_address_literal(shared_server):
    srv = shared_server
    with srv.raw() as c:
        c.greeting()
        say(c, "EHLO [127.0.0.1]", 250)
        say(c, "EHLO [IPv6:::1]", 250)


def test_ehlo_resets_transaction(shared_server):
    srv = shared_server
    before = srv.all_maildir_files()
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")
        say(c, "EHLO %s" % CLIENT, 250)
        say(c, "DATA", 503, "5.5.1")           # the recipients are gone
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")  # not nested
        say(c, "HELO %s" % CLIENT, 250)
        say(c, "RCPT TO:<%s>" % ALICE, 503, "5.5.1")     # no MAIL any more
    assert srv.all_maildir_files() == before


# -- the happy path -------------------------------------------------------

def test_mail_rcpt_data_with_smtplib(server):
    srv = server()
    with srv.smtp() as m:
        assert m.ehlo()[0] == 250
        code, text = m.mail(SENDER)
        assert (code, text.split()[0]) == (250, b"2.1.0")
        code, text = m.rcpt(ALICE)
        assert (code, text.split()[0]) == (250, b"2.1.5")
        code, text = m.rcpt(BOB)
        assert (code, text.split()[0]) == (250, b"2.1.5")
        code, text = m.data(message("happy"))
        assert code == 250
        qid = queued(text.decode())
        # The transaction is over: DATA again is out of sequence.
        assert m.docmd("DATA")[0] == 503
    for addr in (ALICE, BOB):
        data = only_file(srv, addr)
        assert b"Subject: happy\r\n" in data
        assert ("id %s" % qid).encode() in data
    assert "qid=%s" % qid in srv.log_text()


def test_data_354_text_and_queue_id(server):
    srv = server()
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")
        say(c, "DATA", 354)
        c.send(message("raw") + b".\r\n")
        qid1 = queued(expect(c, 250, "2.0.0"))
        say(c, "MAIL FROM:<>", 250, "2.1.0")     # null sender is fine
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")
        qid2 = send_data(c, message("bounce"))
        assert qid1 != qid2
        say(c, "QUIT", 221, "2.0.0")
    assert len(srv.maildir_files(ALICE)) == 2


# -- sequence errors -----------------------------------------------------

def test_commands_before_helo_get_503(shared_server):
    srv = shared_server
    before = srv.all_maildir_files()
    with session(srv, helo=None) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 503, "5.5.1")
        say(c, "RCPT TO:<%s>" % ALICE, 503, "5.5.1")
        say(c, "DATA", 503, "5.5.1")
        # BDAT before HELO: the chunk is read and skipped. It looks like a
        # command on purpose: if it were taken as one we would see 214.
        c.send(b"BDAT 6\r\nHELP\r\n")
        expect(c, 503, "5.5.1")
        say(c, "NOOP", 250, "2.0.0")
        no_more_replies(c)
    assert srv.all_maildir_files() == before


def test_sequence_errors_in_session(server):
    srv = server()
    with session(srv) as c:
        say(c, "RCPT TO:<%s>" % ALICE, 503, "5.5.1")    # RCPT before MAIL
        say(c, "DATA", 503, "5.5.1")                    # DATA before MAIL
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "DATA", 503, "5.5.1")                    # DATA before RCPT
        say(c, "MAIL FROM:<%s>" % SENDER, 503, "5.5.1")  # nested MAIL
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")    # still in the txn
        send_data(c, message("after errors"))
    assert len(srv.maildir_files(ALICE)) == 1


# -- syntax errors --------------------------------------------------------

@pytest.mark.parametrize("line", [
    "MAIL FOO", "MAIL", "MAIL FROM", "MAIL TO:<sender@remote.test>",
])
def test_mail_syntax_error(shared_server, line):
    srv = shared_server
    with session(srv) as c:
        say(c, line, 501, "5.5.4")
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")  # no txn was begun


@pytest.mark.parametrize("addr", [
    "<sender@>", "<@remote.test>", "<sender@@remote.test>",
    "<sender remote.test>", "<sender@remote..test>",
])
def test_mail_bad_sender_address(shared_server, addr):
    srv = shared_server
    with session(srv) as c:
        say(c, "MAIL FROM:%s" % addr, 501, "5.1.7")
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")


@pytest.mark.parametrize("line", ["RCPT FOO", "RCPT", "RCPT FROM:<a@b.c>"])
def test_rcpt_syntax_error(shared_server, line):
    srv = shared_server
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, line, 501, "5.5.4")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")


@pytest.mark.parametrize("addr", [
    "<>", "<alice@>", "<alice@@example.test>", "<alice example.test>",
])
def test_rcpt_bad_recipient_address(shared_server, addr):
    srv = shared_server
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:%s" % addr, 501, "5.1.3")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")


@pytest.mark.parametrize("line", ["FOOBAR", "XYZZY arg", "MAILFROM:<a@b.c>",
                                  "\x01\x02"])
def test_unknown_command(shared_server, line):
    srv = shared_server
    with session(srv) as c:
        say(c, line, 500, "5.5.2")
        say(c, "NOOP", 250, "2.0.0")


def test_commands_are_case_insensitive(shared_server):
    srv = shared_server
    with srv.raw() as c:
        c.greeting()
        say(c, "ehlo %s" % CLIENT, 250)
        say(c, "mail from:<%s>" % SENDER, 250, "2.1.0")
        say(c, "rCpT To:<%s>" % ALICE, 250, "2.1.5")
        say(c, "noop", 250, "2.0.0")
        say(c, "quit", 221, "2.0.0")


# -- ESMTP parameters -----------------------------------------------------

def test_unknown_esmtp_parameter(shared_server):
    srv = shared_server
    with session(srv) as c:
        say(c, "MAIL FROM:<%s> FOO=BAR" % SENDER, 555, "5.5.4")
        say(c, "MAIL FROM:<%s> XFOO" % SENDER, 555, "5.5.4")
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<%s> FOO=BAR" % ALICE, 555, "5.5.4")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")


@pytest.mark.parametrize("param", [
    "SIZE=abc", "SIZE=", "SIZE=-1", "BODY=9BIT", "BODY=",
])
def test_bad_value_of_known_parameter(shared_server, param):
    srv = shared_server
    with session(srv) as c:
        say(c, "MAIL FROM:<%s> %s" % (SENDER, param), 501, "5.5.4")
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")


@pytest.mark.parametrize("param", [
    "BODY=7BIT", "BODY=8BITMIME", "body=8bitmime", "SIZE=100", "SMTPUTF8",
    "BODY=8BITMIME SIZE=1000 SMTPUTF8",
])
def test_known_parameters_accepted(shared_server, param):
    srv = shared_server
    with session(srv) as c:
        say(c, "MAIL FROM:<%s> %s" % (SENDER, param), 250, "2.1.0")


# -- RSET NOOP QUIT VRFY EXPN HELP TURN -----------------------------------

def test_rset(shared_server):
    srv = shared_server
    before = srv.all_maildir_files()
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")
        say(c, "RSET", 250, "2.0.0")
        say(c, "DATA", 503, "5.5.1")                      # txn is gone
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")   # not nested
        say(c, "RSET now", 501, "5.5.4")
        # The failed RSET did not reset: the transaction is still open.
        say(c, "MAIL FROM:<%s>" % SENDER, 503, "5.5.1")
        say(c, "RSET", 250, "2.0.0")
        say(c, "RSET", 250, "2.0.0")                      # RSET twice is fine
    assert srv.all_maildir_files() == before


def test_rset_before_helo(shared_server):
    srv = shared_server
    with session(srv, helo=None) as c:
        say(c, "RSET", 250, "2.0.0")
        say(c, "NOOP", 250, "2.0.0")


def test_noop(shared_server):
    srv = shared_server
    with session(srv) as c:
        say(c, "NOOP", 250, "2.0.0")
        say(c, "NOOP with a string", 250, "2.0.0")   # RFC 5321 4.1.1.9
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "NOOP", 250, "2.0.0")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")  # txn kept by NOOP


def test_quit_closes(shared_server):
    srv = shared_server
    c = session(srv)
    say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
    say(c, "QUIT", 221, "2.0.0")
    assert c.closed(timeout=TIMEOUT), "still open after 221"
    assert c.buf == b"", "bytes after 221: %r" % c.buf
    c.close()


def test_quit_before_helo(shared_server):
    srv = shared_server
    c = session(srv, helo=None)
    say(c, "QUIT", 221, "2.0.0")
    assert c.closed(timeout=TIMEOUT)
    c.close()


def test_vrfy_never_confirms(shared_server):
    srv = shared_server
    with session(srv) as c:
        replies = {}
        for who in ("alice", ALICE, "nosuchuser", "nosuchuser@example.test",
                    "someone@remote.test"):
            text = say(c, "VRFY %s" % who, 252, "2.0.0")
            replies[who] = text.replace(who, "X")
        # Existing and missing users get the same reply.
        assert len(set(replies.values())) == 1, replies
        say(c, "VRFY", 501, "5.5.4")


def test_expn(server):
    srv = server(aliases={"team@example.test": "%s,%s" % (ALICE, BOB)})
    with session(srv) as c:
        say(c, "EXPN team@example.test", 502, "5.5.1")
        say(c, "EXPN nosuch", 502, "5.5.1")
        say(c, "EXPN", 502, "5.5.1")


def test_help(shared_server):
    srv = shared_server
    with session(srv, helo=None) as c:
        say(c, "HELP", 214)
        assert len(c.lines_of_last) > 1, c.lines_of_last
        assert all(l.startswith("214-") for l in c.lines_of_last[:-1])
        assert c.lines_of_last[-1].startswith("214 ")
        say(c, "NOOP", 250, "2.0.0")


def test_turn(shared_server):
    srv = shared_server
    with session(srv) as c:
        say(c, "TURN", 502, "5.5.1")
        say(c, "NOOP", 250, "2.0.0")


def test_not_built_commands_get_502(shared_server):
    srv = shared_server
    with srv.raw() as c:
        c.greeting()
        ehlo = say(c, "EHLO %s" % CLIENT, 250).split("\n")
        keywords = {l.split()[0].upper() for l in ehlo[1:]}
        # ETRN is served (test_smtp_dsn.py); ATRN belongs to [odmr] only
        assert "ETRN" in keywords and "ATRN" not in keywords
        say(c, "ATRN example.test", 502, "5.5.1")
        # AUTH exists but never in plaintext (RFC 4954 538, 5.7.11).
        assert "AUTH" not in keywords
        say(c, "AUTH PLAIN", 538, "5.7.11")
        say(c, "NOOP", 250, "2.0.0")


# -- limits ----------------------------------------------------------------

def test_max_recipients(server):
    users = [ALICE, BOB, "carol@example.test", "dave@example.test"]
    srv = server(limits={"max_recipients": 3}, users=users)
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        for u in users[:3]:
            say(c, "RCPT TO:<%s>" % u, 250, "2.1.5")
        say(c, "RCPT TO:<%s>" % users[3], 452, "4.5.3")
        say(c, "RCPT TO:<%s>" % users[3], 452, "4.5.3")
        send_data(c, message("three"))
    for u in users[:3]:
        assert len(srv.maildir_files(u)) == 1, u
    assert srv.maildir_files(users[3]) == []


def test_mail_size_param_over_limit(server):
    srv = server(limits={"max_message_size": 10000})
    with session(srv) as c:
        say(c, "MAIL FROM:<%s> SIZE=10001" % SENDER, 552, "5.3.4")
        say(c, "RCPT TO:<%s>" % ALICE, 503, "5.5.1")    # no txn
        say(c, "MAIL FROM:<%s> SIZE=10000" % SENDER, 250, "2.1.0")


def test_mail_size_param_20_digits_over_limit(shared_server):
    # RFC 1870: size-value ::= 1*20DIGIT, so this is a well-formed value
    # that is over any limit (even past 2^64), not a bad one.
    with session(shared_server) as c:
        say(c, "MAIL FROM:<%s> SIZE=99999999999999999999" % SENDER,
            552, "5.3.4")
        say(c, "MAIL FROM:<%s> SIZE=18446744073709551616" % SENDER,
            552, "5.3.4")


def test_message_over_limit_in_data(server):
    srv = server(limits={"max_message_size": 10000})
    big = message("big", ("x" * 98 + "\r\n") * 120)   # 12000+ octets
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")
        say(c, "DATA", 354)
        c.send(big + b".\r\n")
        expect(c, 552, "5.3.4")
        no_more_replies(c)
        assert srv.all_maildir_files() == []
        # The session goes on, and a small message still gets through.
        say(c, "DATA", 503, "5.5.1")
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")
        send_data(c, message("small"))
    assert len(srv.maildir_files(ALICE)) == 1
    assert srv.queue_files() == []


def test_command_line_length_limit(shared_server):
    srv = shared_server
    with session(srv) as c:
        # 512 octets with the CRLF is the longest allowed line.
        say(c, "NOOP " + "x" * 505, 250, "2.0.0")
        say(c, "NOOP " + "x" * 506, 500, "5.5.2")
        say(c, "NOOP", 250, "2.0.0")
        no_more_replies(c)


def test_long_line_rest_is_discarded(server):
    srv = server()
    with session(srv) as c:
        # A command hidden after the limit must not be executed.
        c.send(b"NOOP " + b"x" * 600 + b"HELP\r\nNOOP\r\n")
        expect(c, 500, "5.5.2")
        expect(c, 250, "2.0.0")
        no_more_replies(c)
        # A very long line is not buffered whole, and the session survives.
        c.send(b"X" * 200000 + b"\r\n")
        expect(c, 500, "5.5.2", timeout=TIMEOUT)
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")
        send_data(c, message("after long lines"))
    assert len(srv.maildir_files(ALICE)) == 1


def test_mail_rcpt_line_limit_is_1112(shared_server):
    srv = shared_server
    with session(srv) as c:
        head = "MAIL FROM:<%s> XPAD=" % SENDER
        # 1112 octets with CRLF: long but allowed; the unknown parameter
        # is what is wrong with it.
        say(c, head + "a" * (1110 - len(head)), 555, "5.5.4")
        say(c, head + "a" * (1111 - len(head)), 500, "5.5.2")
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        head = "RCPT TO:<%s> XPAD=" % ALICE
        say(c, head + "a" * (1110 - len(head)), 555, "5.5.4")
        say(c, head + "a" * (1111 - len(head)), 500, "5.5.2")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")
        # Other commands keep the 512 limit.
        say(c, "NOOP " + "x" * 600, 500, "5.5.2")


def test_max_errors(server):
    srv = server(limits={"max_errors": 3})
    c = session(srv)
    say(c, "XYZZY", 500, "5.5.2")
    say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")   # good ones don't count
    say(c, "RCPT TO:<>", 501, "5.1.3")
    say(c, "XYZZY", 500, "5.5.2")                     # the 3rd error reply
    expect(c, 421, "4.7.0")
    assert c.closed(timeout=TIMEOUT), "open after 421"
    c.close()


def test_command_timeout(server):
    srv = server(limits={"command_timeout": 2})
    c = session(srv)
    say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
    t0 = time.monotonic()
    text = expect(c, 421, "4.4.2", timeout=10 * SLOW)
    waited = time.monotonic() - t0
    assert 1.5 <= waited <= 6 * SLOW, waited
    assert HOSTNAME in text
    assert c.closed(timeout=TIMEOUT)
    c.close()
    assert srv.all_maildir_files() == []


def test_command_timeout_restarts_on_each_command(server):
    srv = server(limits={"command_timeout": 2})
    with session(srv) as c:
        for _ in range(2):
            time.sleep(1.3)
            say(c, "NOOP", 250, "2.0.0")        # 2.6 s in all, no timeout


def test_data_timeout(server):
    srv = server(limits={"command_timeout": 30, "data_timeout": 2})
    c = session(srv)
    say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
    say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")
    say(c, "DATA", 354)
    c.send(b"Subject: stalled\r\n\r\nhalf a mess")
    expect(c, 421, "4.4.2", timeout=10 * SLOW)
    assert c.closed(timeout=TIMEOUT)
    c.close()
    assert srv.all_maildir_files() == []
    assert wait_until(lambda: srv.queue_files() == [], TIMEOUT), \
        srv.queue_files()


def test_max_connections_per_ip(server):
    srv = server(limits={"max_connections_per_ip": 3})
    open_ = [srv.raw() for _ in range(3)]
    for c in open_:
        c.greeting()
    fourth = srv.raw()
    expect(fourth, 421, "4.7.0")
    assert fourth.closed(timeout=TIMEOUT)
    fourth.close()
    # Another client address is not affected.
    other = srv.raw(source="127.0.0.2")
    other.greeting()
    other.close()
    # The three keep working.
    for c in open_:
        say(c, "EHLO %s" % CLIENT, 250)
    # One leaves: a new one is let in.
    say(open_[0], "QUIT", 221, "2.0.0")
    open_[0].closed()
    open_[0].close()

    def greeted():
        c = srv.raw()
        code, _ = c.reply()
        if code == 220:
            return c
        c.close()
        return None
    again = wait_until(greeted, TIMEOUT)
    assert again, "no 220 after a connection was closed"
    for c in [again] + open_[1:]:
        c.close()


def test_max_connections_total(server):
    srv = server(limits={"max_connections": 3, "max_connections_per_ip": 2})
    conns = [srv.raw(source="127.0.0.1"), srv.raw(source="127.0.0.1"),
             srv.raw(source="127.0.0.2")]
    for c in conns:
        c.greeting()
    extra = srv.raw(source="127.0.0.3")
    expect(extra, 421, "4.7.0")
    assert extra.closed(timeout=TIMEOUT)
    extra.close()
    for c in conns:
        c.close()


# -- recipients -------------------------------------------------------------

def test_subaddress_reaches_user(server):
    srv = server()
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<alice+tag@example.test>", 250, "2.1.5")
        send_data(c, message("tagged"))
    data = only_file(srv, ALICE)
    assert b"Subject: tagged" in data
    assert srv.maildir_files(BOB) == []
    assert not srv.maildir("alice+tag@example.test").exists()


def test_unknown_user_with_subaddress(server):
    srv = server()
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<nosuch+tag@example.test>", 550, "5.1.1")


def test_alias_to_two_users(server):
    srv = server(aliases={"team@example.test": "%s,%s" % (ALICE, BOB)})
    with srv.smtp() as m:
        assert m.sendmail(SENDER, ["team@example.test"],
                          message("to the team")) == {}
    for addr in (ALICE, BOB):
        assert b"Subject: to the team" in only_file(srv, addr)


def test_recipient_case_insensitive(server):
    srv = server()
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<ALICE@EXAMPLE.TEST>", 250, "2.1.5")
        send_data(c, message("upper"))
    assert b"Subject: upper" in only_file(srv, ALICE)


def test_postmaster_without_domain(server):
    srv = server(domains=[HOSTNAME],
                 aliases={"postmaster@%s" % HOSTNAME: ALICE})
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<Postmaster>", 250, "2.1.5")
        send_data(c, message("to postmaster"))
        say(c, "MAIL FROM:<>", 250, "2.1.0")
        say(c, "RCPT TO:<POSTMASTER>", 250, "2.1.5")   # case-insensitive
        send_data(c, message("to POSTMASTER"))
    files = srv.maildir_files(ALICE)
    assert len(files) == 2
    assert srv.maildir_files(BOB) == []


def test_alias_with_remote_target_is_queued(server):
    srv = server(aliases={"fwd@example.test": "someone@remote.test,"
                          + ALICE})
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<fwd@example.test>", 250, "2.1.5")
        send_data(c, message("forwarded"))
    assert len(srv.maildir_files(ALICE)) == 1
    envs = list((srv.data_dir / "queue" / "env").iterdir())
    assert len(envs) == 1
    text = envs[0].read_text()
    assert "rcpt=someone@remote.test" in text
    assert "from <%s>" % SENDER in text
    show = srv.cli("queue", "show", envs[0].name).stdout
    assert "rcpt: <someone@remote.test>" in show
    listing = srv.cli("queue", "list").stdout
    assert envs[0].name in listing and "<someone@remote.test>" in listing


def test_delivery_failure_451(server):
    srv = server()
    new = srv.maildir(BOB) / "new"
    shutil.rmtree(new)
    new.write_bytes(b"not a directory")     # Maildir delivery must fail
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<%s>" % BOB, 250, "2.1.5")
        say(c, "DATA", 354)
        c.send(message("undeliverable") + b".\r\n")
        expect(c, 451, "4.3.0")
        say(c, "NOOP", 250, "2.0.0")
    assert srv.all_maildir_files() == []
    assert list((srv.maildir(BOB) / "tmp").iterdir()) == []


# -- SMTPUTF8 and 8BITMIME ---------------------------------------------------

UTF8_USER = "jösé@example.test"


def test_smtputf8_delivery(server):
    srv = server(users=[ALICE, BOB, UTF8_USER])
    body = ("From: <ünï@remote.test>\r\nTo: <%s>\r\nSubject: ¡hola!\r\n\r\n"
            "Grüße, jösé\r\n" % UTF8_USER).encode()
    with session(srv) as c:
        say(c, "MAIL FROM:<ünï@remote.test> SMTPUTF8 BODY=8BITMIME",
            250, "2.1.0")
        say(c, "RCPT TO:<%s>" % UTF8_USER, 250, "2.1.5")
        qid = send_data(c, body)
    data = only_file(srv, UTF8_USER)
    rp, received, rest = split_stored(data)
    assert rp == "Return-Path: <ünï@remote.test>".encode()
    assert "with UTF8SMTP id %s" % qid in received, received
    assert rest == body


def test_smtputf8_with_smtplib(server):
    srv = server(users=[ALICE, BOB, UTF8_USER])
    with srv.smtp() as m:
        m.ehlo()
        assert m.has_extn("smtputf8")
        assert m.sendmail(SENDER, [UTF8_USER], message("via smtplib"),
                          mail_options=["SMTPUTF8"]) == {}
    assert b"Subject: via smtplib" in only_file(srv, UTF8_USER)


def test_utf8_address_without_smtputf8(server):
    srv = server(users=[ALICE, BOB, UTF8_USER])
    with session(srv) as c:
        say(c, "MAIL FROM:<ünï@remote.test>", 553, "5.6.7")
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<%s>" % UTF8_USER, 553, "5.6.7")
        say(c, "DATA", 503, "5.5.1")
    assert srv.all_maildir_files() == []


def test_8bitmime_body_byte_exact(server):
    srv = server()
    # Every octet but CR, LF and NUL, in lines of 64.
    octets = bytes(b for b in range(1, 256) if b not in (10, 13))
    body = b"".join(octets[i:i + 64] + b"\r\n"
                    for i in range(0, len(octets), 64))
    msg = (b"Subject: 8bit\r\nContent-Type: text/plain; charset=latin1\r\n"
           b"Content-Transfer-Encoding: 8bit\r\n\r\n" + body)
    with session(srv) as c:
        say(c, "MAIL FROM:<%s> BODY=8BITMIME" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")
        # No line of body starts with "." (0x2e is in the middle of one).
        assert not any(l.startswith(b".") for l in body.split(b"\r\n"))
        send_data(c, msg)
    _, _, rest = split_stored(only_file(srv, ALICE))
    assert rest == msg


# -- dot-stuffing and the stored file ------------------------------------

def test_dot_stuffing_undone(server):
    srv = server()
    wire = (b"Subject: dots\r\n\r\n..hidden\r\n...two\r\n..\r\n"
            b"a.b\r\n .space\r\n")
    want = (b"Subject: dots\r\n\r\n.hidden\r\n..two\r\n.\r\n"
            b"a.b\r\n .space\r\n")
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")
        send_data(c, wire)
    _, _, rest = split_stored(only_file(srv, ALICE))
    assert rest == want


def test_lone_dot_line_via_smtplib(server):
    srv = server()
    msg = b"Subject: lone dot\r\n\r\nbefore\r\n.\r\nafter\r\n.hidden\r\n"
    with srv.smtp() as m:
        assert m.sendmail(SENDER, [ALICE], msg) == {}
    _, _, rest = split_stored(only_file(srv, ALICE))
    assert rest == msg


def test_stored_file_format_one_recipient(server):
    srv = server()
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")
        qid = send_data(c, message("format"))
    path = srv.maildir_files(ALICE)[0]
    data = path.read_bytes()
    rp, received, rest = split_stored(data)
    assert rp == ("Return-Path: <%s>" % SENDER).encode()
    assert received.startswith("Received: from %s ([127.0.0.1])" % CLIENT)
    assert "by %s (correo) with ESMTP id %s" % (HOSTNAME, qid) in received
    assert "for <%s>;" % ALICE in received, received
    # RFC 5322 date after the ';'
    assert re.search(r"; \w{3}, \d{1,2} \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}",
                     received), received
    assert rest == message("format")
    # CRLF line ends only: no bare LF, no bare CR.
    assert re.search(rb"(?<!\r)\n", data) is None
    assert re.search(rb"\r(?!\n)", data) is None
    # The size in the name is the size of the file.
    m = re.search(r",S=(\d+)", path.name)
    assert m, path.name
    assert int(m.group(1)) == len(data) == path.stat().st_size
    assert path.parent.name == "new"


def test_stored_file_two_recipients_helo(server):
    srv = server()
    with session(srv, helo="HELO") as c:
        say(c, "MAIL FROM:<>", 250, "2.1.0")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")
        say(c, "RCPT TO:<%s>" % BOB, 250, "2.1.5")
        qid = send_data(c, message("two"))
    for addr in (ALICE, BOB):
        rp, received, _ = split_stored(only_file(srv, addr))
        assert rp == b"Return-Path: <>"
        assert "with SMTP id %s" % qid in received, received
        assert " for <" not in received, received


# -- BDAT / CHUNKING --------------------------------------------------------

def test_bdat_chunks_then_last(server):
    srv = server()
    msg = message("chunks", ".not stuffed\r\n..neither\r\nend\r\n")
    # Cut so that a CRLF is split over two chunks.
    cut1 = msg.index(b"\r\n") + 1
    chunks = [msg[:cut1], msg[cut1:cut1 + 10], msg[cut1 + 10:]]
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")
        for ch in chunks[:-1]:
            bdat(c, ch)
            assert expect(c, 250, "2.0.0") == \
                "2.0.0 %d octets received" % len(ch)
        bdat(c, chunks[-1], last=True)
        qid = queued(expect(c, 250, "2.0.0"))
        say(c, "NOOP", 250, "2.0.0")
    rp, received, rest = split_stored(only_file(srv, ALICE))
    assert "id %s" % qid in received
    assert rest == msg


def test_bdat_zero_last(server):
    srv = server()
    msg = message("zero last")
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")
        bdat(c, msg)
        expect(c, 250, "2.0.0")
        say(c, "BDAT 0 LAST", 250, "2.0.0")
    _, _, rest = split_stored(only_file(srv, ALICE))
    assert rest == msg


def test_bdat_single_chunk_last(server):
    srv = server()
    msg = message("single")
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")
        bdat(c, msg, last=True)
        queued(expect(c, 250, "2.0.0"))
        # The transaction is over.
        bdat(c, b"more")
        expect(c, 503, "5.5.1")
        say(c, "NOOP", 250, "2.0.0")
    _, _, rest = split_stored(only_file(srv, ALICE))
    assert rest == msg


def test_bdat_without_mail_is_skipped(shared_server):
    srv = shared_server
    before = srv.all_maildir_files()
    with session(srv) as c:
        c.send(b"BDAT 12\r\nHELP\r\nHELP\r\n")   # two HELPs inside the chunk
        expect(c, 503, "5.5.1")
        say(c, "NOOP", 250, "2.0.0")
        no_more_replies(c)
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        c.send(b"BDAT 6 LAST\r\nHELP\r\n")        # no RCPT yet
        expect(c, 503, "5.5.1")
        say(c, "NOOP", 250, "2.0.0")
        no_more_replies(c)
    assert srv.all_maildir_files() == before


@pytest.mark.parametrize("line", [
    "BDAT", "BDAT abc", "BDAT -1", "BDAT 5 FIRST", "BDAT 5 LAST extra",
])
def test_bdat_bad_syntax(shared_server, line):
    srv = shared_server
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")
        say(c, line, 501, "5.5.4")
        say(c, "NOOP", 250, "2.0.0")


def test_bdat_over_size(server):
    srv = server(limits={"max_message_size": 10000})
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")
        bdat(c, b"a" * 6000 + b"\r\n")
        expect(c, 250, "2.0.0")
        # The chunk bodies must still be read, so a chunk that looks like
        # commands must not produce replies.
        bdat(c, (b"HELP\r\n" * 1000), last=True)
        expect(c, 552, "5.3.4")
        say(c, "NOOP", 250, "2.0.0")
        no_more_replies(c)
        # One big chunk at once, then the session still works.
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")
        bdat(c, b"x" * 20000, last=True)
        expect(c, 552, "5.3.4")
        say(c, "NOOP", 250, "2.0.0")
        no_more_replies(c)
    assert srv.all_maildir_files() == []
    assert srv.queue_files() == []


def test_data_after_bdat(server):
    srv = server()
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")
        bdat(c, b"Subject: mixed\r\n")
        expect(c, 250, "2.0.0")
        say(c, "DATA", 503, "5.5.1")
        bdat(c, b"\r\nbody\r\n", last=True)
        queued(expect(c, 250, "2.0.0"))
    _, _, rest = split_stored(only_file(srv, ALICE))
    assert rest == b"Subject: mixed\r\n\r\nbody\r\n"


# -- bad octets in the message ----------------------------------------------

@pytest.mark.parametrize("bad", [b"bare\nLF", b"bare\rCR", b"nul\0here"])
def test_bad_octets_in_data(server, bad):
    srv = server()
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")
        say(c, "DATA", 354)
        c.send(b"Subject: bad\r\n\r\n" + bad + b"\r\nmore\r\n.\r\n")
        expect(c, 550, "5.6.0")
        say(c, "NOOP", 250, "2.0.0")
        no_more_replies(c)
    assert srv.all_maildir_files() == []


@pytest.mark.parametrize("bad", [b"bare\nLF", b"bare\rCR", b"nul\0here"])
def test_bad_octets_in_bdat(server, bad):
    srv = server()
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")
        bdat(c, b"Subject: bad\r\n\r\n" + bad + b"\r\n")
        expect(c, 250, "2.0.0")
        bdat(c, b"more\r\n", last=True)
        expect(c, 550, "5.6.0")
        say(c, "NOOP", 250, "2.0.0")
    assert srv.all_maildir_files() == []


# -- PIPELINING ---------------------------------------------------------------

def test_pipelining_one_transaction(server):
    srv = server()
    c = srv.raw()
    c.greeting()
    c.send("EHLO %s\r\nMAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nRCPT TO:<%s>\r\n"
           "DATA\r\n" % (CLIENT, SENDER, ALICE, BOB))
    expect(c, 250)
    assert "250-PIPELINING" in c.lines_of_last
    expect(c, 250, "2.1.0")
    expect(c, 250, "2.1.5")
    expect(c, 250, "2.1.5")
    expect(c, 354)
    c.send(message("pipelined") + b".\r\nQUIT\r\n")
    queued(expect(c, 250, "2.0.0"))
    expect(c, 221, "2.0.0")
    assert c.closed(timeout=TIMEOUT)
    c.close()
    for addr in (ALICE, BOB):
        assert b"Subject: pipelined" in only_file(srv, addr)


def test_pipelining_with_a_refused_recipient(server):
    srv = server()
    with session(srv) as c:
        c.send("MAIL FROM:<%s>\r\nRCPT TO:<nosuch@example.test>\r\n"
               "RCPT TO:<%s>\r\nDATA\r\n" % (SENDER, ALICE))
        expect(c, 250, "2.1.0")
        expect(c, 550, "5.1.1")
        expect(c, 250, "2.1.5")
        expect(c, 354)
        c.send(message("one of two") + b".\r\n")
        queued(expect(c, 250, "2.0.0"))
    assert len(srv.maildir_files(ALICE)) == 1


def test_pipelining_three_transactions_in_one_write(server):
    srv = server()
    c = session(srv)
    batch = b""
    for i in range(3):
        batch += ("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\nDATA\r\n"
                  % (SENDER, ALICE)).encode()
        batch += message("batch %d" % i, "..dot %d\r\n" % i) + b".\r\n"
    batch += b"QUIT\r\n"
    c.send(batch)
    qids = []
    for i in range(3):
        expect(c, 250, "2.1.0")
        expect(c, 250, "2.1.5")
        expect(c, 354)
        qids.append(queued(expect(c, 250, "2.0.0")))
    expect(c, 221, "2.0.0")
    assert c.closed(timeout=TIMEOUT)
    c.close()
    assert len(set(qids)) == 3
    files = srv.maildir_files(ALICE)
    assert len(files) == 3
    rests = sorted(split_stored(p.read_bytes())[2] for p in files)
    assert rests == [message("batch %d" % i, ".dot %d\r\n" % i)
                     for i in range(3)]


def test_pipelining_bdat_batch(server):
    srv = server()
    msg = message("bdat pipelined")
    with session(srv) as c:
        c.send(("MAIL FROM:<%s>\r\nRCPT TO:<%s>\r\n" % (SENDER, ALICE))
               .encode() + b"BDAT %d LAST\r\n" % len(msg) + msg
               + b"NOOP\r\n")
        expect(c, 250, "2.1.0")
        expect(c, 250, "2.1.5")
        queued(expect(c, 250, "2.0.0"))
        expect(c, 250, "2.0.0")
        no_more_replies(c)
    _, _, rest = split_stored(only_file(srv, ALICE))
    assert rest == msg


def test_junk_commands_are_limited(server):
    """Past [limits] max_junk_commands, NOOP/RSET/VRFY/... count as
    errors (then 421); a delivered message starts the count again."""
    srv = server(limits={"max_junk_commands": 4, "max_errors": 3})
    with session(srv) as c:
        for _ in range(4):
            say(c, "NOOP", 250)
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")
        send_data(c, message("resets"))
        for _ in range(6):          # 4 free again, then 2 counted
            say(c, "RSET", 250)
        c.send("VRFY x\r\n")        # the third error: 421
        code, text = c.reply()
        assert code == 421 and "too many commands" in text, text
    assert "event=too-many-commands" in srv.log_text()
    assert len(srv.maildir_files(ALICE)) == 1
