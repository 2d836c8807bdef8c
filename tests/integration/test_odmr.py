"""On-Demand Mail Relay (RFC 2645): mail for a domain held for a client
(`correo odmr add`) is accepted on port 25 and waits in the queue, never
routed by MX; the client connects to the odmr listener, STARTTLS, AUTH,
ATRN, and the connection turns around: the test becomes the SMTP server
on the same socket and receives the mail.

Transcripts:

    C: (connects to the odmr port)      S: 220 ... ODMR
    C: EHLO / STARTTLS / EHLO / AUTH PLAIN ...   S: 235
    C: ATRN customer.test               S: 250 OK now reversing ...
    C: 220 customer.test ESMTP          S: EHLO mx.example.test
    C: 250 ...                          S: MAIL FROM:<...> ...
"""

import base64
import email
import ssl
import time

import pytest

from conftest import (DOMAIN, PASSWORD, TIMEOUT, RawSMTP, free_port,
                      wait_until)

ALICE = "alice@example.test"
BOB = "bob@example.test"
HELD = "customer.test"


def odmr_server(server, **kw):
    port = free_port()
    extra = kw.pop("extra", {})
    extra.setdefault("odmr", {})["listen"] = "127.0.0.1:%d" % port
    srv = server(extra=extra, **kw)
    srv.odmr_port = port
    return srv


def hold(srv, domain=HELD, user=ALICE):
    srv.cli("odmr", "add", domain, user)


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def connect(srv):
    c = RawSMTP(srv.host, srv.odmr_port)
    code, text = c.greeting()
    assert "ODMR" in text
    return c


def starttls(c):
    code, _ = c.cmd("EHLO client.customer.test")
    assert code == 250
    assert c.cmd("STARTTLS")[0] == 220
    assert c.buf == b""
    c.sock = tls_context().wrap_socket(c.sock)
    code, text = c.cmd("EHLO client.customer.test")
    assert code == 250
    return text


def login(srv, user=ALICE):
    c = connect(srv)
    starttls(c)
    token = base64.b64encode(("\0%s\0%s" % (user, PASSWORD)).encode())
    code, text = c.cmd(b"AUTH PLAIN " + token)
    assert code == 235, text
    return c


def queue_mail(srv, rcpts, sender=ALICE, subject="held"):
    """Sends one message on port 25 (no AUTH); returns its queue id."""
    with srv.smtp() as s:
        s.ehlo()
        assert s.mail(sender)[0] == 250
        for r in rcpts:
            code, text = s.rcpt(r)
            assert code == 250, (r, code, text)
        msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nhello\r\n"
               % (sender, rcpts[0], subject))
        code, text = s.data(msg)
        assert code == 250, text
    return text.decode().rsplit(" ", 1)[1]


def attempted(srv, qid):
    """The scheduler knows the message and made its (routeless) attempt."""
    return wait_until(lambda: "event=delivery-end id=%s" % qid
                      in srv.log_text(), TIMEOUT)


def held_server(server, rcpts, **kw):
    """A server holding customer.test for alice, with one message for
    rcpts queued and attempted; returns (server, queue id)."""
    srv = odmr_server(server, **kw)
    hold(srv)
    qid = queue_mail(srv, rcpts)
    assert attempted(srv, qid)
    return srv, qid


def queue_ids(srv):
    out = srv.cli("queue", "list").stdout
    return [l.split()[0] for l in out.splitlines()
            if l and l.split()[0].isalnum() and len(l.split()[0]) == 16]


def act_as_server(c, replies=None, greeting="220 customer.test ESMTP test"):
    """The SMTP server side on the turned-around connection: returns the
    transactions as dicts (from, rcpts, data). replies maps a recipient
    to its RCPT reply (default 250)."""
    replies = replies or {}
    deadline_s = TIMEOUT
    c.send(greeting + "\r\n")
    got, cur, commands = [], None, []
    while True:
        line = c._line(time.monotonic() + deadline_s)
        verb = line.split(" ", 1)[0].upper()
        commands.append(verb)
        if verb == "EHLO":
            c.send("250-customer.test\r\n250 8BITMIME\r\n")
        elif verb == "MAIL":
            cur = {"from": line[10:].split(">")[0].lstrip("<"),
                   "rcpts": [], "data": b""}
            c.send("250 2.1.0 ok\r\n")
        elif verb == "RCPT":
            addr = line[8:].split(">")[0].lstrip("<")
            reply = replies.get(addr, "250 2.1.5 ok")
            if reply.startswith("250"):
                cur["rcpts"].append(addr)
            c.send(reply + "\r\n")
        elif verb == "DATA":
            c.send("354 go ahead\r\n")
            lines = []
            while True:
                l = c._line(time.monotonic() + deadline_s)
                if l == ".":
                    break
                lines.append(l[1:] if l.startswith(".") else l)
            cur["data"] = ("\r\n".join(lines) + "\r\n").encode()
            got.append(cur)
            c.send("250 2.0.0 taken\r\n")
        elif verb == "RSET":
            c.send("250 ok\r\n")
        elif verb == "QUIT":
            c.send("221 bye\r\n")
            break
        else:
            c.send("502 what\r\n")
    assert commands[0] == "EHLO", commands
    assert c.closed(TIMEOUT)
    return got


def test_held_mail_is_pulled_with_atrn(server):
    srv = odmr_server(server)
    hold(srv)
    qid = queue_mail(srv, ["Carol@customer.test"], subject="for carol")
    assert attempted(srv, qid)
    assert qid in queue_ids(srv)
    # Held, never routed: no MX lookup, no connection.
    log = srv.log_text()
    assert "event=route id=%s" % qid not in log
    assert "smtp-client" not in log
    show = srv.cli("queue", "show", qid).stdout
    assert "On-Demand Mail Relay" in show

    c = login(srv)
    code, text = c.cmd("ATRN %s" % HELD)
    assert code == 250 and "reversing" in text.lower(), (code, text)
    got = act_as_server(c)
    assert len(got) == 1
    assert got[0]["from"] == ALICE
    assert got[0]["rcpts"] == ["Carol@customer.test"]
    msg = email.message_from_bytes(got[0]["data"])
    assert msg["Subject"] == "for carol"
    assert wait_until(lambda: not srv.queue_files(), TIMEOUT), \
        srv.queue_files()
    assert queue_ids(srv) == []


def test_atrn_without_argument_pulls_every_domain_of_the_user(server):
    srv = odmr_server(server)
    hold(srv)
    hold(srv, "second.test")
    hold(srv, "bobs.test", BOB)
    q1 = queue_mail(srv, ["a@customer.test"], subject="one")
    q2 = queue_mail(srv, ["b@second.test", "c@bobs.test"], subject="two")
    assert attempted(srv, q1) and attempted(srv, q2)

    c = login(srv)
    assert c.cmd("ATRN")[0] == 250
    got = act_as_server(c)
    assert sorted(r for t in got for r in t["rcpts"]) == \
        ["a@customer.test", "b@second.test"]
    # bob's recipient stays held, nothing else of the message is left
    assert wait_until(lambda: queue_ids(srv) == [q2], TIMEOUT)
    show = srv.cli("queue", "show", q2).stdout
    assert "c@bobs.test" in show and "b@second.test" not in show


def test_recipient_results_are_kept_per_recipient(server):
    srv, qid = held_server(server, ["ok@customer.test", "bad@customer.test",
                                    "later@customer.test"])
    before = len(srv.maildir_files(ALICE))

    c = login(srv)
    assert c.cmd("ATRN customer.test")[0] == 250
    got = act_as_server(c, replies={
        "bad@customer.test": "550 5.1.1 no such user",
        "later@customer.test": "450 4.2.0 try later"})
    assert got[0]["rcpts"] == ["ok@customer.test"]
    # 4xx: still held; 5xx: a report to the sender
    assert wait_until(lambda: len(srv.maildir_files(ALICE)) > before,
                      TIMEOUT)
    report = srv.maildir_files(ALICE)[-1].read_bytes()
    assert b"bad@customer.test" in report
    assert b"5.1.1" in report
    show = srv.cli("queue", "show", qid).stdout
    assert "later@customer.test" in show
    assert "ok@customer.test" not in show
    assert "bad@customer.test" not in show


def test_held_mail_expires_with_a_bounce(server):
    srv = odmr_server(server, extra={"delivery": {
        "max_lifetime": "2s", "retry_min": "1s", "retry_max": "1s"}})
    hold(srv)
    before = len(srv.maildir_files(ALICE))
    qid = queue_mail(srv, ["late@customer.test"])
    assert wait_until(lambda: qid not in queue_ids(srv), TIMEOUT * 2)
    assert wait_until(lambda: len(srv.maildir_files(ALICE)) > before,
                      TIMEOUT)
    report = srv.maildir_files(ALICE)[-1].read_bytes()
    assert b"late@customer.test" in report
    assert b"4.4.7" in report


def test_only_held_domains_are_accepted_on_port_25(server):
    srv = odmr_server(server)
    hold(srv)
    with srv.raw() as c:
        c.greeting()
        code, text = c.cmd("EHLO client.example.net")
        assert "ATRN" not in text
        assert c.cmd("ATRN")[0] == 502
        assert c.cmd("MAIL FROM:<x@example.net>")[0] == 250
        assert c.cmd("RCPT TO:<someone@other.test>")[0] == 554
        assert c.cmd("RCPT TO:<someone@customer.test>")[0] == 250


def test_ehlo_and_auth_need_tls(server):
    srv = odmr_server(server)
    c = connect(srv)
    code, text = c.cmd("EHLO client.customer.test")
    assert code == 250
    exts = text.splitlines()[1:]
    assert "STARTTLS" in exts and "ATRN" in exts
    assert not any(e.startswith("AUTH") for e in exts)
    token = base64.b64encode(("\0%s\0%s" % (ALICE, PASSWORD)).encode())
    assert c.cmd(b"AUTH PLAIN " + token)[0] == 538
    assert c.cmd("ATRN")[0] == 530
    text = starttls(c)
    assert any(e.startswith("AUTH ") and "PLAIN" in e
               for e in text.splitlines())


def test_atrn_before_auth_is_refused(server):
    srv = odmr_server(server)
    hold(srv)
    c = connect(srv)
    assert c.cmd("ATRN customer.test")[0] == 503   # no EHLO yet
    starttls(c)
    code, text = c.cmd("ATRN customer.test")
    assert code == 530, text
    assert c.cmd("QUIT")[0] == 221


def test_wrong_password(server):
    srv = odmr_server(server)
    c = connect(srv)
    starttls(c)
    token = base64.b64encode(("\0%s\0wrong" % ALICE).encode())
    assert c.cmd(b"AUTH PLAIN " + token)[0] == 535


def test_atrn_for_a_domain_not_the_users(server):
    srv = odmr_server(server)
    hold(srv, "bobs.test", BOB)
    hold(srv)
    queue_mail(srv, ["x@bobs.test"])
    c = login(srv)
    for arg in ("bobs.test", "customer.test,bobs.test", "nobody.test",
                "example.test"):
        code, text = c.cmd("ATRN " + arg)
        assert code == 450, (arg, code, text)
    assert c.cmd("ATRN a..b,")[0] == 501
    assert c.cmd("QUIT")[0] == 221


def test_user_without_domains_is_refused(server):
    srv = odmr_server(server)
    c = login(srv, BOB)
    assert c.cmd("ATRN")[0] == 450


def test_atrn_with_nothing_queued(server):
    srv = odmr_server(server)
    hold(srv)
    c = login(srv)
    code, text = c.cmd("ATRN customer.test")
    assert code == 453, text
    # the session goes on
    assert c.cmd("NOOP")[0] == 250
    assert c.cmd("QUIT")[0] == 221
    assert c.closed(TIMEOUT)


def test_other_commands_are_not_implemented(server):
    srv = odmr_server(server)
    c = connect(srv)
    c.cmd("EHLO client.customer.test")
    for cmd in ("MAIL FROM:<a@b.test>", "RCPT TO:<a@b.test>", "DATA",
                "VRFY x", "ETRN customer.test", "TURN", "HELO x"):
        assert c.cmd(cmd)[0] == 502, cmd
    assert c.cmd("RSET")[0] == 250


def test_client_leaving_after_atrn_keeps_the_mail(server):
    srv, qid = held_server(server, ["gone@customer.test"])
    c = login(srv)
    assert c.cmd("ATRN")[0] == 250
    c.close()
    assert wait_until(lambda: "event=odmr-end" in srv.log_text(), TIMEOUT)
    assert queue_ids(srv) == [qid]
    # and the next pull gets it
    c = login(srv)
    assert c.cmd("ATRN")[0] == 250
    got = act_as_server(c)
    assert got[0]["rcpts"] == ["gone@customer.test"]
    assert wait_until(lambda: queue_ids(srv) == [], TIMEOUT)


# ---- the CLI -------------------------------------------------------------

def test_cli_add_list_del(server):
    srv = server(start=False)
    assert srv.cli("odmr", "list").stdout == ""
    srv.cli("odmr", "add", "Customer.TEST", ALICE)
    srv.cli("odmr", "add", "b.test", BOB)
    assert srv.cli("odmr", "list").stdout == \
        "b.test %s\ncustomer.test %s\n" % (BOB, ALICE)
    srv.cli("odmr", "del", "customer.test")
    assert srv.cli("odmr", "list").stdout == "b.test %s\n" % BOB
    # deleting the user drops its domains
    srv.cli("user", "del", BOB)
    assert srv.cli("odmr", "list").stdout == ""


@pytest.mark.parametrize("args", [
    ("add", DOMAIN, ALICE),                 # a local domain
    ("add", "x.test", "nobody@example.test"),  # no such user
    ("add", "bad..test", ALICE),
    ("add", "x.test", "not-an-address"),
    ("del", "never.test"),
])
def test_cli_errors(server, args):
    srv = server(start=False)
    r = srv.cli("odmr", *args, check=False)
    assert r.returncode == 1, r
    assert r.stdout == "" and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("correo: ")


def test_cli_duplicate_and_local_conflicts(server):
    srv = server(start=False)
    srv.cli("odmr", "add", HELD, ALICE)
    r = srv.cli("odmr", "add", HELD, BOB, check=False)
    assert r.returncode == 1 and "already" in r.stderr
    # a held domain cannot become local while it is held
    r = srv.cli("domain", "add", HELD, check=False)
    assert r.returncode == 1 and "ODMR" in r.stderr
    r = srv.cli("user", "add", "x@" + HELD, "--password-stdin",
                input="pw-pw-pw-pw\n", check=False)
    assert r.returncode == 1 and "ODMR" in r.stderr
    assert HELD not in srv.cli("domain", "list").stdout


@pytest.mark.parametrize("args", [
    (), ("add",), ("add", "x.test"), ("del",), ("list", "x"),
    ("frob",), ("add", "a", "b", "c"), ("list", "--password-stdin"),
])
def test_cli_usage(server, args):
    srv = server(start=False)
    r = srv.cli("odmr", *args, check=False)
    assert r.returncode == 2, (args, r)
    assert "usage" in r.stderr


def test_cli_help(server):
    srv = server(start=False)
    r = srv.cli("odmr", "--help")
    assert "odmr add DOMAIN USER" in r.stdout


def test_shutdown_during_a_pull(server):
    srv, qid = held_server(server, ["wait@customer.test"])
    c = login(srv)
    assert c.cmd("ATRN")[0] == 250
    # The client never greets: correo waits as an SMTP client would.
    assert wait_until(lambda: "event=odmr-start" in srv.log_text(), TIMEOUT)
    srv.stop()          # exit status 0, nothing left behind
    assert c.closed(TIMEOUT)
    srv.start()
    assert queue_ids(srv) == [qid]
