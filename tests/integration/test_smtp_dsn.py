"""Delivery status notification parameters on the SMTP server (RFC 3461):
DSN in EHLO, RET=/ENVID= on MAIL and NOTIFY=/ORCPT= on RCPT checked and
kept in the queue envelope; and ETRN (RFC 1985) on the smtp listener.

Queued mail must stay queued here: [delivery] points the resolver and the
relay host at ports where nothing answers, so every attempt fails
temporarily and the retry waits an hour."""

import base64

import pytest

from conftest import PASSWORD, free_port, wait_until
from test_submission import connect

ALICE = "alice@example.test"
BOB = "bob@example.test"
CLIENT = "client.example.net"


def b64(s):
    return base64.b64encode(s.encode()).decode()


def undeliverable():
    """[delivery] keys under which nothing queued can leave."""
    return {"resolver": "127.0.0.1@9",
            "relayhost": "127.0.0.1:%d" % free_port(),
            "retry_min": "1h", "retry_max": "2h"}


@pytest.fixture
def dsn(server):
    p465 = free_port()
    srv = server(extra={"submissions": {"listen": f"127.0.0.1:{p465}"},
                        "delivery": undeliverable()},
                 aliases={"fwd@example.test": "far@remote.test",
                          "both@example.test":
                          "bob@example.test,near@remote.test"})
    srv.p465 = p465
    return srv


def submit(srv):
    """An authenticated session of alice on 465, EHLO done."""
    c = connect(srv, srv.p465, tls=True)
    code, lines = c.cmd("AUTH PLAIN " + b64(f"\0{ALICE}\0{PASSWORD}"))
    assert code == 235, lines
    return c


def smtp25(srv, ehlo=True):
    return connect(srv, srv.port, ehlo=ehlo)


def ok(c, line, code=250):
    got, lines = c.cmd(line)
    assert got == code, (line, lines)
    return lines


def send_data(c, subject="dsn"):
    ok(c, "DATA", 354)
    lines = ok(c, f"From: {ALICE}\r\nTo: x@remote.test\r\n"
               f"Subject: {subject}\r\n\r\nbody\r\n.")
    return lines[0].split()[-1]


def show(srv, qid):
    return srv.cli("queue", "show", qid).stdout


def rcpt_block(text, addr):
    """The lines of `queue show` about one recipient."""
    out, on = [], False
    for line in text.splitlines():
        if line.startswith("rcpt: "):
            on = line.startswith(f"rcpt: <{addr}> ")
        elif not line.startswith("  "):
            on = False
        if on:
            out.append(line)
    assert out, f"no rcpt {addr} in:\n{text}"
    return out


# ---- EHLO ---------------------------------------------------------------

def test_ehlo_advertises_dsn_and_etrn_on_port_25(dsn):
    c = smtp25(dsn, ehlo=False)
    code, lines = c.cmd(f"EHLO {CLIENT}")
    assert code == 250
    keywords = {l[4:].split()[0].upper() for l in lines[1:]}
    assert "DSN" in keywords and "ETRN" in keywords


def test_ehlo_advertises_dsn_without_etrn_on_submission(dsn):
    c = connect(dsn, dsn.p465, tls=True, ehlo=False)
    code, lines = c.cmd(f"EHLO {CLIENT}")
    assert code == 250
    keywords = {l[4:].split()[0].upper() for l in lines[1:]}
    assert "DSN" in keywords and "ETRN" not in keywords
    assert c.cmd("ETRN remote.test")[0] == 502


# ---- parameters kept in the queue ------------------------------------------

def test_dsn_parameters_are_queued(dsn):
    c = submit(dsn)
    ok(c, f"MAIL FROM:<{ALICE}> RET=HDRS ENVID=abc")
    ok(c, "RCPT TO:<x@remote.test> NOTIFY=SUCCESS,FAILURE "
       "ORCPT=rfc822;x@remote.test")
    ok(c, "RCPT TO:<y@remote.test>")
    ok(c, "RCPT TO:<z@remote.test> NOTIFY=never")
    ok(c, f"RCPT TO:<{BOB}> NOTIFY=SUCCESS")
    qid = send_data(c)
    assert len(dsn.maildir_files(BOB)) == 1
    text = show(dsn, qid)
    assert "ret: HDRS" in text.splitlines()
    assert "envid: abc" in text.splitlines()
    x = rcpt_block(text, "x@remote.test")
    assert x[0] in ("rcpt: <x@remote.test> pending",
                    "rcpt: <x@remote.test> deferred")
    assert "  notify: SUCCESS,FAILURE" in x
    assert "  orcpt: rfc822;x@remote.test" in x
    y = rcpt_block(text, "y@remote.test")
    assert not any(l.startswith(("  notify:", "  orcpt:")) for l in y), y
    assert "  notify: NEVER" in rcpt_block(text, "z@remote.test")
    # Local recipients are delivered, not queued.
    assert f"<{BOB}>" not in text
    assert any(l.startswith("attempts: ") for l in text.splitlines())
    assert any(l.startswith("next-attempt: ") for l in text.splitlines())


def test_without_dsn_parameters_nothing_extra_is_shown(dsn):
    c = submit(dsn)
    ok(c, f"MAIL FROM:<{ALICE}>")
    ok(c, "RCPT TO:<plain@remote.test>")
    qid = send_data(c)
    text = show(dsn, qid)
    assert not any(l.startswith(("ret:", "envid:"))
                   for l in text.splitlines()), text
    assert not any(l.startswith(("  notify:", "  orcpt:"))
                   for l in text.splitlines()), text


def test_envid_and_orcpt_xtext_are_decoded_for_show(dsn):
    c = submit(dsn)
    # "+41" need not be encoded: the stored form is the shortest xtext.
    ok(c, f"MAIL FROM:<{ALICE}> ret=full envid=a+2Bb+41+20c")
    ok(c, "RCPT TO:<p@remote.test> ORCPT=RFC822;p+2Btag@remote.test "
       "NOTIFY=delay")
    qid = send_data(c)
    text = show(dsn, qid)
    assert "ret: FULL" in text.splitlines()
    assert "envid: a+bA c" in text.splitlines()
    p = rcpt_block(text, "p@remote.test")
    assert "  orcpt: rfc822;p+tag@remote.test" in p
    assert "  notify: DELAY" in p
    env = (dsn.data_dir / "queue" / "env" / qid).read_text()
    assert "a+2BbA+20c" in env


def test_utf8_orcpt_needs_smtputf8(dsn):
    c = submit(dsn)
    ok(c, f"MAIL FROM:<{ALICE}>")
    code, lines = c.cmd("RCPT TO:<u@remote.test> "
                        "ORCPT=utf-8;j\u00f6@remote.test")
    assert code == 501 and lines[0].startswith("501 5.5.4"), lines
    ok(c, "RSET")
    ok(c, f"MAIL FROM:<{ALICE}> SMTPUTF8")
    ok(c, "RCPT TO:<u@remote.test> ORCPT=utf-8;j\u00f6@remote.test")
    ok(c, "RCPT TO:<v@remote.test> ORCPT=utf-8;j\\x{F6}@remote.test")
    qid = send_data(c)
    text = show(dsn, qid)
    assert "  orcpt: utf-8;j\u00f6@remote.test" in rcpt_block(
        text, "u@remote.test")
    assert "  orcpt: utf-8;j\u00f6@remote.test" in rcpt_block(
        text, "v@remote.test")


def test_alias_to_remote_keeps_notify_and_names_the_alias(dsn):
    c = smtp25(dsn)
    ok(c, "MAIL FROM:<someone@sender.test> RET=HDRS ENVID=id1")
    ok(c, "RCPT TO:<fwd@example.test> NOTIFY=FAILURE")
    ok(c, "RCPT TO:<both@example.test> NOTIFY=SUCCESS "
       "ORCPT=rfc822;orig@example.net")
    qid = send_data(c)
    assert len(dsn.maildir_files(BOB)) == 1
    text = show(dsn, qid)
    assert "envid: id1" in text.splitlines()
    far = rcpt_block(text, "far@remote.test")
    assert "  notify: FAILURE" in far
    assert "  orcpt: rfc822;fwd@example.test" in far
    near = rcpt_block(text, "near@remote.test")
    assert "  notify: SUCCESS" in near
    assert "  orcpt: rfc822;orig@example.net" in near


def test_local_recipient_with_dsn_parameters_is_delivered(dsn):
    c = smtp25(dsn)
    ok(c, "MAIL FROM:<someone@sender.test> RET=FULL ENVID=x")
    ok(c, f"RCPT TO:<{ALICE}> NOTIFY=SUCCESS,DELAY "
       f"ORCPT=rfc822;{ALICE}")
    send_data(c)
    assert len(dsn.maildir_files(ALICE)) == 1
    # NOTIFY=SUCCESS: a "delivered" notice from <> to the sender, queued
    # since the sender is elsewhere
    listing = dsn.cli("queue", "list").stdout.splitlines()
    assert len(listing) == 1 and "<> <someone@sender.test>" in listing[0]


# ---- refused values ---------------------------------------------------------

BAD_MAIL = [
    ("RET=X", "RET takes FULL or HDRS"),
    ("RET", None),
    ("RET=HDRS RET=FULL", "only once"),
    ("ENVID=a+00b", "printable"),
    ("ENVID=a+2b", None),
    ("ENVID=" + "e" * 101, "100"),
    ("ENVID=a ENVID=b", "only once"),
]


@pytest.mark.parametrize("param,why", BAD_MAIL, ids=[p for p, _ in BAD_MAIL])
def test_bad_mail_parameters_get_501(dsn, param, why):
    c = smtp25(dsn)
    code, lines = c.cmd(f"MAIL FROM:<someone@sender.test> {param}")
    assert code == 501 and lines[0].startswith("501 5.5.4"), lines
    if why:
        assert why in lines[0], lines
    # The session goes on: no transaction was started.
    ok(c, "MAIL FROM:<someone@sender.test>")


def test_envid_with_a_space_is_refused(dsn):
    c = smtp25(dsn)
    # The space ends the value: "b" is then a parameter we do not know.
    code, lines = c.cmd("MAIL FROM:<someone@sender.test> ENVID=a b")
    assert code in (501, 555) and lines[0][4:9] == "5.5.4", lines
    ok(c, "MAIL FROM:<someone@sender.test> ENVID=a+20b")


BAD_RCPT = [
    ("NOTIFY=BOGUS", "NOTIFY takes"),
    ("NOTIFY=NEVER,SUCCESS", "NEVER cannot be combined"),
    ("NOTIFY=FAILURE,never", "NEVER cannot be combined"),
    ("NOTIFY=SUCCESS,SUCCESS", "repeats"),
    ("NOTIFY=SUCCESS NOTIFY=FAILURE", "only once"),
    ("NOTIFY=", None),
    ("NOTIFY", None),
    ("ORCPT=rfc822", None),
    ("ORCPT=rfc822;", None),
    ("ORCPT=;a@b.test", None),
    ("ORCPT=rfc822;a+2", None),
    ("ORCPT=rfc822;a ORCPT=rfc822;b", "only once"),
]


@pytest.mark.parametrize("param,why", BAD_RCPT, ids=[p for p, _ in BAD_RCPT])
def test_bad_rcpt_parameters_get_501(dsn, param, why):
    c = smtp25(dsn)
    ok(c, "MAIL FROM:<someone@sender.test>")
    code, lines = c.cmd(f"RCPT TO:<{ALICE}> {param}")
    assert code == 501 and lines[0].startswith("501 5.5.4"), lines
    if why:
        assert why in lines[0], lines
    ok(c, f"RCPT TO:<{ALICE}>")


# ---- ETRN -----------------------------------------------------------------

# Until the scheduler runs, ETRN can only answer 458.
NO_SCHEDULER = 458


def test_etrn_needs_helo(dsn):
    c = smtp25(dsn, ehlo=False)
    code, lines = c.cmd("ETRN example.test")
    assert code == 503 and lines[0].startswith("503 5.5.1"), lines
    ok(c, f"HELO {CLIENT}")
    code, lines = c.cmd("ETRN example.test")
    assert code in (251, NO_SCHEDULER), lines


@pytest.mark.parametrize("line", [
    "ETRN", "ETRN ", "ETRN @", "ETRN #", "ETRN #queue", "ETRN bad..domain",
    "ETRN [127.0.0.1]", "ETRN a b", "ETRN -x.test",
])
def test_etrn_syntax(dsn, line):
    c = smtp25(dsn)
    code, lines = c.cmd(line)
    assert code == 501 and lines[0].startswith("501 5.5.4"), lines
    ok(c, "NOOP")


def test_etrn_not_in_a_transaction(dsn):
    c = smtp25(dsn)
    ok(c, "MAIL FROM:<someone@sender.test>")
    code, lines = c.cmd("ETRN example.test")
    assert code == 503 and lines[0].startswith("503 5.5.1"), lines
    ok(c, f"RCPT TO:<{ALICE}>")
    code, _ = c.cmd("ETRN example.test")
    assert code == 503
    ok(c, "RSET")
    code, _ = c.cmd("ETRN example.test")
    assert code in (251, NO_SCHEDULER)


def test_etrn_with_and_without_queued_mail(dsn):
    c = submit(dsn)
    ok(c, f"MAIL FROM:<{ALICE}>")
    ok(c, "RCPT TO:<x@remote.test>")
    send_data(c)
    ok(c, f"MAIL FROM:<{ALICE}>")
    ok(c, "RCPT TO:<y@mx.sub.remote.test>")
    send_data(c)
    assert len(dsn.cli("queue", "list").stdout.splitlines()) == 2

    e = smtp25(dsn)
    code, lines = e.cmd("ETRN remote.test")
    assert code in (250, NO_SCHEDULER), lines
    if code == NO_SCHEDULER:
        assert lines[0].startswith("458 4.3.0"), lines
        pytest.skip("no scheduler running: ETRN answers 458")
    assert lines[0] == "250 2.0.0 Queuing for node <remote.test> started"
    code, lines = e.cmd("ETRN REMOTE.TEST")
    assert code == 250, lines
    code, lines = e.cmd("ETRN @remote.test")
    assert code == 250, lines
    code, lines = e.cmd("ETRN @sub.remote.test")
    assert code == 250, lines
    code, lines = e.cmd("ETRN sub.remote.test")
    assert code == 251, lines
    code, lines = e.cmd("ETRN elsewhere.test")
    assert code == 251, lines
    assert lines[0] == ("251 2.0.0 OK, no messages waiting for node "
                        "<elsewhere.test>")
    code, lines = e.cmd("ETRN @test.invalid")
    assert code == 251, lines
    ok(e, "NOOP")
    # The flushed mail stays queued: every attempt fails temporarily.
    assert len(dsn.cli("queue", "list").stdout.splitlines()) == 2


def test_etrn_log_line(dsn):
    c = smtp25(dsn)
    c.cmd("ETRN @example.test")
    assert wait_until(lambda: "event=etrn node=@example.test"
                      in dsn.log_text())
