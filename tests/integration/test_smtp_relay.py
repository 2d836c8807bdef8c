"""correo is never an open relay: without authentication, RCPT to anything
that is not a local mailbox is refused, whatever the address looks like,
and nothing is delivered or queued for it (RFC 5321 3.6, 7.1; RFC 2505).
"""

import smtplib

import pytest

from test_smtp_commands import (ALICE, BOB, CLIENT, SENDER, expect,
                                message, queued, say, session)

# Forms that must be refused. Each maps to the replies accepted for it;
# 250 is never among them.
RELAY = {(554, "5.7.1")}
NO_USER = {(550, "5.1.1"), (550, "5.1.0"), (550, "5.1.2"), (550, "5.1.6"),
           (550, "5.1.3")}
DENIED = RELAY | NO_USER

REFUSED_FORMS = [
    # plain remote
    ("<bob@remote.test>", RELAY),
    ("<BOB@REMOTE.TEST>", RELAY),
    # percent hack: local part "alice%remote.test" at a local domain
    ("<alice%remote.test@example.test>", DENIED),
    ("<alice%remote.test>", DENIED | {(501, "5.1.3")}),
    # quoted local part that holds an address
    ('<"alice@remote.test"@example.test>', DENIED),
    ('<"alice@remote.test">', DENIED | {(501, "5.1.3")}),
    # source route to a remote mailbox (RFC 5321 says ignore the route)
    ("<@example.test:bob@remote.test>", RELAY),
    ("<@example.test,@mx.example.test:bob@remote.test>", RELAY),
    # bang path
    ("<remote.test!alice@example.test>", DENIED),
    # address literals, even our own address
    ("<alice@[127.0.0.1]>", DENIED),
    ("<alice@[IPv6:::1]>", DENIED),
    ("<alice@[192.0.2.1]>", DENIED),
    # trailing dot: also not a valid Domain (RFC 5321 4.1.2), so a syntax
    # refusal is as good
    ("<alice@example.test.>", DENIED | {(501, "5.1.3")}),
    # look-alike domains
    ("<alice@sub.example.test>", RELAY),
    ("<alice@example.test.remote.test>", RELAY),
    ("<alice@remote-example.test>", RELAY),
    ("<alice@mx.example.test>", DENIED),
    ("<alice@localhost>", RELAY),
    ("<postmaster@remote.test>", RELAY),
    # unknown local user
    ("<nosuch@example.test>", {(550, "5.1.1")}),
    ("<nosuch+tag@example.test>", {(550, "5.1.1")}),
]


def snapshot(srv):
    return srv.all_maildir_files(), srv.queue_files()


def assert_nothing_new(srv, before):
    maildirs, queue = snapshot(srv)
    assert maildirs == before[0], "unexpected delivery: %s" % (
        sorted(set(maildirs) - set(before[0])))
    assert queue == [], "queued: %s" % queue


@pytest.mark.parametrize("rcpt,allowed", REFUSED_FORMS,
                         ids=[f for f, _ in REFUSED_FORMS])
def test_rcpt_refused(shared_server, rcpt, allowed):
    srv = shared_server
    before = snapshot(srv)
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        code, text = c.cmd("RCPT TO:%s" % rcpt)
        assert code != 250, "RELAYED: RCPT TO:%s -> %d %s" % (rcpt, code,
                                                             text)
        assert (code, text.split(" ", 1)[0]) in allowed, \
            "RCPT TO:%s -> %d %s" % (rcpt, code, text)
        # No valid recipient: DATA may not start (503, or 554 per 3.3).
        code, text = c.cmd("DATA")
        assert code in (503, 554), "DATA -> %d %s" % (code, text)
        say(c, "QUIT", 221, "2.0.0")
    assert_nothing_new(srv, before)


@pytest.mark.parametrize("sender", [
    ALICE, "<>", "postmaster@example.test", "alice@[127.0.0.1]",
])
def test_local_or_null_sender_does_not_open_relay(shared_server, sender):
    srv = shared_server
    before = snapshot(srv)
    with session(srv) as c:
        frm = sender if sender == "<>" else "<%s>" % sender
        say(c, "MAIL FROM:%s" % frm, 250, "2.1.0")
        say(c, "RCPT TO:<bob@remote.test>", 554, "5.7.1")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")
        say(c, "RSET", 250, "2.0.0")
    assert_nothing_new(srv, before)


def test_relay_refused_after_helo_localhost(shared_server):
    """A client calling itself by our own name or localhost gets nothing
    more than any other client."""
    srv = shared_server
    before = snapshot(srv)
    for helo in ("EHLO localhost", "EHLO %s" % srv.hostname,
                 "HELO [127.0.0.1]"):
        with srv.raw() as c:
            c.greeting()
            say(c, helo, 250)
            say(c, "MAIL FROM:<%s>" % ALICE, 250, "2.1.0")
            say(c, "RCPT TO:<bob@remote.test>", 554, "5.7.1")
    assert_nothing_new(srv, before)


def test_relay_refused_with_smtplib(shared_server):
    srv = shared_server
    before = snapshot(srv)
    with srv.smtp() as m:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
            m.sendmail(SENDER, ["someone@remote.test"], message("relay"))
        code, text = e.value.recipients["someone@remote.test"]
        assert (code, text.split()[0]) == (554, b"5.7.1")
    assert_nothing_new(srv, before)


def test_mixed_recipients_only_local_delivered(shared_server):
    srv = shared_server
    before = snapshot(srv)
    alice_before = srv.maildir_files(ALICE)
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<bob@remote.test>", 554, "5.7.1")
        say(c, "RCPT TO:<%s>" % ALICE, 250, "2.1.5")
        say(c, "RCPT TO:<alice%remote.test@example.test>", 550)
        say(c, "DATA", 354)
        c.send(message("mixed") + b".\r\n")
        queued(expect(c, 250, "2.0.0"))
    new = sorted(set(srv.all_maildir_files()) - set(before[0]))
    assert len(new) == 1 and new == sorted(
        set(srv.maildir_files(ALICE)) - set(alice_before)), new
    assert srv.queue_files() == []


@pytest.mark.parametrize("rcpt", [
    "<@remote.test:alice@example.test>",       # route ignored: local alice
    "<alice@EXAMPLE.Test>",                    # domains are case-blind
])
def test_local_forms_deliver_to_alice_only(shared_server, rcpt):
    srv = shared_server
    before = snapshot(srv)
    alice_before = srv.maildir_files(ALICE)
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        code, text = c.cmd("RCPT TO:%s" % rcpt)
        if code != 250:
            # Refusing is allowed for the source route; never for case.
            assert "EXAMPLE" not in rcpt, (code, text)
            assert 500 <= code < 600, (code, text)
            assert_nothing_new(srv, before)
            return
        assert text.startswith("2.1.5"), text
        say(c, "DATA", 354)
        c.send(message("local form %s" % rcpt) + b".\r\n")
        queued(expect(c, 250, "2.0.0"))
    new = sorted(set(srv.all_maildir_files()) - set(before[0]))
    alice_new = sorted(set(srv.maildir_files(ALICE)) - set(alice_before))
    assert len(new) == 1 and new == alice_new, new
    assert b"Subject: local form" in new[0].read_bytes()
    assert srv.queue_files() == []


def test_unknown_local_user(shared_server):
    srv = shared_server
    before = snapshot(srv)
    with session(srv) as c:
        say(c, "MAIL FROM:<%s>" % SENDER, 250, "2.1.0")
        say(c, "RCPT TO:<nosuch@example.test>", 550, "5.1.1")
        say(c, "RCPT TO:<%s>" % BOB, 250, "2.1.5")   # session goes on
        say(c, "RSET", 250, "2.0.0")
    assert_nothing_new(srv, before)


def test_no_relay_in_pipelined_batch(shared_server):
    srv = shared_server
    before = snapshot(srv)
    with srv.raw() as c:
        c.greeting()
        c.send("EHLO %s\r\nMAIL FROM:<%s>\r\nRCPT TO:<a@remote.test>\r\n"
               "RCPT TO:<b@[127.0.0.1]>\r\nRCPT TO:<@x.test:c@remote.test>"
               "\r\nDATA\r\n" % (CLIENT, SENDER))
        expect(c, 250)
        expect(c, 250, "2.1.0")
        for _ in range(3):
            code, text = c.reply()
            assert (code, text.split(" ", 1)[0]) in DENIED, (code, text)
        code, text = c.reply()
        assert code in (503, 554), (code, text)
        say(c, "QUIT", 221, "2.0.0")
    assert_nothing_new(srv, before)
