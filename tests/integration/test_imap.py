"""The IMAP server (RFC 9051 / RFC 3501 and extensions) on an imap
(STARTTLS) and an imaps (implicit TLS) listener, driven by Python's
imaplib and by raw transcripts: every command, the extensions clients rely
on, errors, two sessions on one mailbox, IDLE woken by SMTP, restart
persistence and POP3 on the same mailbox."""

import imaplib
import re
import socket
import ssl
import time

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


@pytest.fixture
def imap(server):
    p143, p993, p110 = free_port(), free_port(), free_port()
    srv = server(extra={"imap": {"listen": f"127.0.0.1:{p143}"},
                        "imaps": {"listen": f"127.0.0.1:{p993}"},
                        "pop3": {"listen": f"127.0.0.1:{p110}"}},
                 limits={"max_errors": 100})
    srv.p143, srv.p993, srv.p110 = p143, p993, p110
    return srv


def message(subject, body="hello\r\n", to=ALICE, extra=""):
    return (f"From: Sender <{SENDER}>\r\nTo: <{to}>\r\nSubject: {subject}\r\n"
            f"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n{extra}"
            f"Message-ID: <{subject.replace(' ', '.')}@remote.test>\r\n"
            f"\r\n{body}").encode()


def deliver(srv, msgs, rcpt=ALICE):
    with srv.smtp() as c:
        for m in msgs:
            assert c.sendmail(SENDER, [rcpt], m) == {}


def login(srv, user=ALICE, tls="starttls"):
    if tls == "implicit":
        c = imaplib.IMAP4_SSL(srv.host, srv.p993, ssl_context=ctx(),
                              timeout=TIMEOUT)
    else:
        c = imaplib.IMAP4(srv.host, srv.p143, timeout=TIMEOUT)
        c.starttls(ssl_context=ctx())
    typ, data = c.login(user, PASSWORD)
    assert typ == "OK", data
    return c


def ok(resp):
    typ, data = resp
    assert typ == "OK", data
    return data


class Raw:
    """A raw IMAP client: sends exactly the bytes given, reads lines."""

    def __init__(self, srv, tls=False, port=None):
        s = socket.create_connection((srv.host, port or srv.p143),
                                     timeout=TIMEOUT)
        if tls:
            s = ctx().wrap_socket(s, server_hostname="localhost")
        self.s, self.buf = s, b""
        self.greeting = self.line()

    def send(self, data):
        self.s.sendall(data.encode() if isinstance(data, str) else data)

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("closed; partial %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def until_tagged(self, tag):
        lines = []
        while True:
            l = self.line()
            lines.append(l)
            if l.startswith(tag + " "):
                return lines

    def cmd(self, tag, line):
        self.send(f"{tag} {line}\r\n")
        return self.until_tagged(tag)

    def starttls(self):
        assert self.cmd("s1", "STARTTLS")[-1].startswith("s1 OK")
        self.s = ctx().wrap_socket(self.s, server_hostname="localhost")

    def login(self, user=ALICE):
        r = self.cmd("l1", f'LOGIN "{user}" "{PASSWORD}"')
        assert r[-1].startswith("l1 OK"), r
        return r

    def closed(self):
        """True when the server closes the connection (after whatever it
        still had to say)."""
        try:
            for _ in range(100):
                if self.s.recv(65536) == b"":
                    return True
            return False
        except (ConnectionError, ssl.SSLError):
            return True
        except socket.timeout:
            return False


# ---- greeting, capabilities, TLS, login ----------------------------------

def test_greeting_and_capabilities_before_and_after_tls(imap):
    r = Raw(imap)
    assert r.greeting.startswith("* OK [CAPABILITY IMAP4rev1 IMAP4rev2")
    caps = r.cmd("a", "CAPABILITY")[0]
    assert "STARTTLS" in caps and "LOGINDISABLED" in caps
    assert "AUTH=" not in caps
    r.starttls()
    caps = r.cmd("b", "CAPABILITY")[0]
    assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps
    assert "AUTH=PLAIN" in caps and "AUTH=SCRAM-SHA-256-PLUS" in caps
    done = r.login()
    for cap in ("IDLE", "UIDPLUS", "MOVE", "CONDSTORE", "QRESYNC",
                "SPECIAL-USE", "LITERAL+", "NAMESPACE", "ENABLE", "ESEARCH",
                "LIST-EXTENDED", "LIST-STATUS", "BINARY", "UTF8=ACCEPT",
                "MULTIAPPEND", "APPENDLIMIT=", "STATUS=SIZE", "SAVEDATE",
                "WITHIN", "CHILDREN", "UNSELECT", "SEARCHRES"):
        assert cap in done[-1], cap


def test_plaintext_login_refused(imap):
    r = Raw(imap)
    resp = r.cmd("a", f'LOGIN "{ALICE}" "{PASSWORD}"')
    assert resp[-1].startswith("a NO [PRIVACYREQUIRED]"), resp
    resp = r.cmd("b", "AUTHENTICATE PLAIN AGFsaWNlAHg=")
    assert resp[-1].startswith("b NO [PRIVACYREQUIRED]"), resp
    assert "log" in r.cmd("c", "SELECT INBOX")[-1].lower()


def test_starttls_injection_is_discarded(imap):
    r = Raw(imap)
    r.send("s1 STARTTLS\r\nx1 CAPABILITY\r\n")
    assert r.line().startswith("s1 OK")
    r.s = ctx().wrap_socket(r.s, server_hostname="localhost")
    r.buf = b""
    resp = r.cmd("x2", "NOOP")
    assert resp == ["x2 OK NOOP completed"], resp


def test_implicit_tls_login_and_wrong_password(imap):
    c = login(imap, tls="implicit")
    assert c.logout()[0] == "BYE"
    c = imaplib.IMAP4_SSL(imap.host, imap.p993, ssl_context=ctx(),
                          timeout=TIMEOUT)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        c.login(ALICE, "wrong")
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        c.login("nobody@example.test", PASSWORD)


def test_authenticate_plain_with_sasl_ir_and_continuation(imap):
    r = Raw(imap, tls=True, port=imap.p993)
    import base64
    ir = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()
    resp = r.cmd("a", f"AUTHENTICATE PLAIN {ir}")
    assert resp[-1].startswith("a OK"), resp
    r2 = Raw(imap, tls=True, port=imap.p993)
    r2.send("b AUTHENTICATE PLAIN\r\n")
    assert r2.line() == "+ "
    r2.send(ir + "\r\n")
    assert r2.until_tagged("b")[-1].startswith("b OK")
    r3 = Raw(imap, tls=True, port=imap.p993)
    r3.send("c AUTHENTICATE PLAIN\r\n")
    assert r3.line() == "+ "
    r3.send("*\r\n")
    assert r3.until_tagged("c")[-1].startswith("c BAD")


# ---- selecting and reading ------------------------------------------------

def test_select_fetch_delivered_mail(imap):
    deliver(imap, [message("first"), message("second", body="two\r\n")])
    c = login(imap)
    typ, data = c.select("INBOX")
    assert typ == "OK" and data == [b"2"]
    assert c.untagged_responses.get("UIDVALIDITY")
    data = ok(c.fetch("1:*", "(UID FLAGS RFC822.SIZE INTERNALDATE)"))
    assert len(data) == 2 and b"UID 1 " in data[0] and b"FLAGS ()" in data[0]
    data = ok(c.fetch("2", "(BODY.PEEK[])"))
    # as delivered: the trace fields SMTP added, then the message as sent
    assert data[0][1].endswith(message("second", body="two\r\n"))
    assert b"Received: " in data[0][1].split(b"\r\n\r\n")[0]
    assert re.search(rb"RFC822\.SIZE (\d+)", ok(c.fetch("2", "RFC822.SIZE"))[0])
    data = ok(c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    assert data[0][1] == b"Subject: first\r\n\r\n"
    data = ok(c.fetch("1", "(BODY.PEEK[TEXT]<0.3>)"))
    assert data[0][1] == b"hel" and b"BODY[TEXT]<0>" in data[0][0]
    data = ok(c.fetch("1", "(ENVELOPE)"))
    assert b'"first"' in data[0] and b'"sender" "remote.test"' in data[0]
    data = ok(c.fetch("1", "(BODYSTRUCTURE)"))
    assert b'("TEXT" "PLAIN"' in data[0].upper()
    # BODY[] (not PEEK) sets \Seen and says so.
    data = ok(c.fetch("1", "(BODY[])"))
    assert b"\\Seen" in b"".join(d if isinstance(d, bytes) else d[0]
                                 for d in data)
    data = ok(c.fetch("1", "FLAGS"))
    assert b"\\Seen" in data[0]
    assert c.logout()[0] == "BYE"


def test_uid_fetch_and_bad_sequences(imap):
    deliver(imap, [message("a"), message("b")])
    r = Raw(imap)
    r.starttls()
    r.login()
    r.cmd("s", "SELECT INBOX")
    resp = r.cmd("f", "UID FETCH 2 FLAGS")
    assert resp[0] == "* 2 FETCH (UID 2 FLAGS ())", resp
    assert r.cmd("g", "FETCH 3 FLAGS")[-1].startswith("g BAD")
    assert r.cmd("h", "FETCH 0 FLAGS")[-1].startswith("h BAD")
    assert r.cmd("i", "UID FETCH 7:9 FLAGS") == ["i OK FETCH completed"]
    assert r.cmd("j", "FETCH 1 (BOGUS)")[-1].startswith("j BAD")
    assert r.cmd("k", "FROB")[-1].startswith("k BAD")
    # The server is still fine.
    assert r.cmd("l", "NOOP")[-1] == "l OK NOOP completed"


def test_store_flags_keywords_and_search(imap):
    deliver(imap, [message("alpha"), message("beta", body="Grüße\r\n"),
                   message("gamma")])
    c = login(imap)
    c.select("INBOX")
    data = ok(c.store("1,3", "+FLAGS", "(\\Flagged $Label1)"))
    assert b"\\Flagged" in data[0] and b"$Label1" in data[0]
    assert ok(c.search(None, "FLAGGED")) == [b"1 3"]
    assert ok(c.search(None, "UNFLAGGED")) == [b"2"]
    assert ok(c.search(None, "KEYWORD", "$Label1")) == [b"1 3"]
    assert ok(c.search(None, "SUBJECT", "BETA")) == [b"2"]
    assert ok(c.search(None, "OR", "SUBJECT", "alpha", "SUBJECT",
                       "gamma")) == [b"1 3"]
    assert ok(c.search(None, "NOT", "SUBJECT", "alpha")) == [b"2 3"]
    assert ok(c.search(None, "FROM", "sender@remote")) == [b"1 2 3"]
    assert ok(c.search(None, "LARGER", "1")) == [b"1 2 3"]
    assert ok(c.search(None, "SENTON", "1-Dec-2026")) == [b"1 2 3"]
    assert ok(c.search(None, "SENTBEFORE", "1-Dec-2026")) == [b""]
    assert ok(c.uid("SEARCH", None, "UID", "2:*")) == [b"2 3"]
    # 8-bit search text goes as a literal (atoms are ASCII)
    c.literal = "grüße".encode()
    assert ok(c.search("UTF-8", "BODY")) == [b"2"]
    typ, data = c.search("KOI8-R", "ALL")
    assert typ == "NO" and b"BADCHARSET" in data[0]
    ok(c.store("1", "-FLAGS", "(\\Flagged)"))
    assert ok(c.search(None, "FLAGGED")) == [b"3"]
    ok(c.store("2", "FLAGS.SILENT", "(\\Seen \\Answered)"))
    assert b"\\Answered" in ok(c.fetch("2", "FLAGS"))[0]
    c.logout()


def test_esearch_and_searchres(imap):
    deliver(imap, [message(f"m{i}") for i in range(5)])
    r = Raw(imap)
    r.starttls()
    r.login()
    r.cmd("s", "SELECT INBOX")
    resp = r.cmd("a", "SEARCH RETURN (MIN MAX COUNT ALL) 2:4")
    assert resp[0] == '* ESEARCH (TAG "a") MIN 2 MAX 4 ALL 2:4 COUNT 3', resp
    resp = r.cmd("b", "UID SEARCH RETURN (SAVE) 4:5")
    assert resp == ["b OK SEARCH completed"], resp
    resp = r.cmd("c", "UID FETCH $ (UID)")
    assert resp[:2] == ["* 4 FETCH (UID 4)", "* 5 FETCH (UID 5)"], resp


def test_expunge_copy_move_uidplus(imap):
    deliver(imap, [message(f"m{i}") for i in range(4)])
    c = login(imap)
    c.select("INBOX")
    typ, data = c.copy("1:2", "Archive")
    assert typ == "OK" and b"COPYUID" in data[0], data
    m = re.search(rb"COPYUID (\d+) 1:2 (\d+):(\d+)", data[0])
    assert m, data
    typ, data = c._simple_command("MOVE", "3", "Trash")
    assert typ == "OK", data
    assert c.untagged_responses.pop("EXPUNGE", None) == [b"3"]
    ok(c.store("1", "+FLAGS", "(\\Deleted)"))
    typ, data = c.expunge()
    assert data == [b"1"]
    typ, data = c.select("INBOX")
    assert data == [b"2"]
    typ, data = c.status("Archive", "(MESSAGES UIDNEXT UNSEEN SIZE)")
    assert b"MESSAGES 2" in data[0] and b"UNSEEN 2" in data[0]
    typ, data = c.status("Trash", "(MESSAGES)")
    assert b"MESSAGES 1" in data[0]
    typ, data = c.copy("1", "Nowhere")
    assert typ == "NO" and b"TRYCREATE" in data[0]
    c.logout()
    # The Maildir on disk agrees: 2 in INBOX, 2 in .Archive, 1 in .Trash.
    root = imap.maildir(ALICE)
    count = lambda d: len(list((d / "cur").iterdir())) + len(
        list((d / "new").iterdir()))
    assert count(root) == 2 and count(root / ".Archive") == 2
    assert count(root / ".Trash") == 1


def test_append_appenduid_internaldate_and_literal_plus(imap):
    c = login(imap)
    msg = message("appended")
    typ, data = c.append("Sent", "(\\Seen)", '"01-Jan-2026 12:00:00 +0000"',
                         msg)
    assert typ == "OK" and b"APPENDUID" in data[0], data
    c.select("Sent")
    data = ok(c.fetch("1", "(FLAGS INTERNALDATE BODY.PEEK[])"))
    assert b"\\Seen" in data[0][0] and b"01-Jan-2026 12:00:00 +0000" in data[0][0]
    assert data[0][1] == msg
    c.logout()
    r = Raw(imap)
    r.starttls()
    r.login()
    body = message("literal plus")
    r.send(f"a APPEND INBOX {{{len(body)}+}}\r\n".encode() + body + b"\r\n")
    resp = r.until_tagged("a")
    assert resp[-1].startswith("a OK [APPENDUID"), resp
    # MULTIAPPEND: two messages in one command.
    b2 = message("two")
    r.send(f"b APPEND INBOX {{{len(body)}+}}\r\n".encode() + body +
           f" {{{len(b2)}+}}\r\n".encode() + b2 + b"\r\n")
    resp = r.until_tagged("b")
    assert re.match(r"b OK \[APPENDUID \d+ 2:3\]", resp[-1]), resp


def test_big_append_goes_through_a_file_and_limits(imap):
    c = login(imap)
    big = message("big", body="x" * 998 + "\r\n") * 1
    big = big + (b"y" * 1000 + b"\r\n") * 300
    typ, data = c.append("INBOX", None, None, big)
    assert typ == "OK", data
    c.select("INBOX")
    assert ok(c.fetch("1", "(BODY.PEEK[])"))[0][1] == big
    c.logout()
    r = Raw(imap)
    r.starttls()
    r.login()
    r.send("a APPEND INBOX {999999999999}\r\n")
    assert r.line().startswith("a NO [TOOBIG]")
    assert r.cmd("b", "NOOP")[-1] == "b OK NOOP completed"
    r.send("c LOGIN {99999999}\r\n")
    assert r.line().startswith("c BAD")


def test_mailbox_management_and_list(imap):
    c = login(imap)
    data = ok(c.list())
    names = {re.search(rb'"/" "?([^"]*)"?$', l).group(1): l for l in data}
    assert set(names) >= {b"INBOX", b"Sent", b"Drafts", b"Trash", b"Junk",
                          b"Archive"}
    assert b"\\Sent" in names[b"Sent"] and b"\\Trash" in names[b"Trash"]
    ok(c.create("Projects/2026"))
    typ, data = c.create("Projects/2026")
    assert typ == "NO" and b"ALREADYEXISTS" in data[0]
    data = ok(c.list('""', "Projects/%"))
    assert len(data) == 1 and b"Projects/2026" in data[0]
    data = ok(c.list('""', "%"))
    proj = [l for l in data if b'"Projects"' in l or b" Projects" in l]
    assert proj and b"\\HasChildren" in proj[0]
    ok(c.rename("Projects/2026", "Projects/Done"))
    assert b"Projects/Done" in b"".join(ok(c.list('""', "Projects/*")))
    ok(c.delete("Projects/Done"))
    typ, data = c.delete("INBOX")
    assert typ == "NO"
    typ, data = c.select("Nope")
    assert typ == "NO" and b"NONEXISTENT" in data[0]
    ok(c.subscribe("Sent"))
    data = ok(c.lsub())
    assert any(b"Sent" in l for l in data)
    typ, data = c.create("../escape")
    assert typ in ("NO", "BAD")
    try:                        # imaplib raises on BAD
        typ, data = c.create("a\x01b")
    except imaplib.IMAP4.error:
        typ = "BAD"
    assert typ in ("NO", "BAD")
    assert not (imap.data_dir / "mail" / "escape").exists()
    # Modified UTF-7 names (RFC 3501 5.1.3) round trip.
    ok(c.create("&AOQ-rger"))
    assert any(b"&AOQ-rger" in l for l in ok(c.list()))
    assert (imap.maildir(ALICE) / ".ärger").is_dir()
    c.logout()


def test_list_extended_and_status_return(imap):
    r = Raw(imap)
    r.starttls()
    r.login()
    resp = r.cmd("a", 'LIST (SPECIAL-USE) "" "*" RETURN (STATUS (MESSAGES))')
    lists = [l for l in resp if l.startswith("* LIST")]
    assert len(lists) == 5, resp
    assert any(l.startswith("* STATUS") for l in resp)
    resp = r.cmd("b", 'LIST "" ""')
    assert resp[0] == '* LIST (\\Noselect) "/" ""'
    resp = r.cmd("c", "NAMESPACE")
    assert resp[0] == '* NAMESPACE (("" "/")) NIL NIL'


def test_condstore_qresync(imap):
    deliver(imap, [message("a"), message("b"), message("c")])
    r = Raw(imap)
    r.starttls()
    r.login()
    assert r.cmd("e", "ENABLE QRESYNC")[0] == "* ENABLED QRESYNC"
    resp = r.cmd("s", "SELECT INBOX")
    hms = int(re.search(r"HIGHESTMODSEQ (\d+)", " ".join(resp)).group(1))
    uv = int(re.search(r"UIDVALIDITY (\d+)", " ".join(resp)).group(1))
    resp = r.cmd("t", f"STORE 2 (UNCHANGEDSINCE {hms}) +FLAGS (\\Seen)")
    assert "MODSEQ" in resp[0] and resp[-1].startswith("t OK"), resp
    resp = r.cmd("u", "STORE 2 (UNCHANGEDSINCE 1) +FLAGS (\\Flagged)")
    assert resp[-1].startswith("u OK [MODIFIED 2]"), resp
    resp = r.cmd("v", f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {hms})")
    assert len([l for l in resp if " FETCH (" in l]) == 1, resp
    r.cmd("d", "STORE 1 +FLAGS (\\Deleted)")
    resp = r.cmd("x", "EXPUNGE")
    assert resp[0] == "* VANISHED 1", resp
    r.cmd("c", "CLOSE")
    resp = r.cmd("q", f"SELECT INBOX (QRESYNC ({uv} {hms}))")
    assert "* VANISHED (EARLIER) 1" in resp, resp
    assert any("FETCH (UID 2" in l for l in resp), resp


def test_two_sessions_see_each_others_changes(imap):
    deliver(imap, [message("one")])
    a, b = login(imap), login(imap)
    a.select("INBOX")
    b.select("INBOX")
    b.untagged_responses.pop("EXISTS", None)
    ok(a.store("1", "+FLAGS", "(\\Flagged)"))
    ok(b.noop())
    fetches = b.untagged_responses.get("FETCH", [])
    assert any(b"\\Flagged" in f for f in fetches), b.untagged_responses
    deliver(imap, [message("two")])
    ok(b.noop())
    assert b.untagged_responses.get("EXISTS") == [b"2"]
    ok(a.store("1", "+FLAGS", "(\\Deleted)"))
    ok(a.expunge())
    ok(b.noop())
    assert b.untagged_responses.get("EXPUNGE") == [b"1"]
    a.logout()
    b.logout()


def test_idle_wakes_on_smtp_delivery(imap):
    r = Raw(imap)
    r.starttls()
    r.login()
    r.cmd("s", "SELECT INBOX")
    r.send("i IDLE\r\n")
    assert r.line() == "+ idling"
    t0 = time.monotonic()
    deliver(imap, [message("wake up")])
    line = r.line()
    assert line == "* 1 EXISTS", line
    assert time.monotonic() - t0 < 1.0 * (4 if TIMEOUT > 10 else 1)
    r.send("DONE\r\n")
    assert r.until_tagged("i")[-1] == "i OK IDLE terminated"


def test_state_survives_restart(imap):
    deliver(imap, [message("keep")])
    c = login(imap)
    c.select("INBOX")
    ok(c.store("1", "+FLAGS", "(\\Flagged $Work)"))
    uv = c.untagged_responses.get("UIDVALIDITY")
    c.logout()
    imap.restart()
    c = login(imap)
    c.select("INBOX")
    assert c.untagged_responses.get("UIDVALIDITY") == uv
    data = ok(c.fetch("1", "(UID FLAGS)"))
    assert b"UID 1" in data[0] and b"\\Flagged" in data[0]
    assert b"$Work" in data[0]
    c.logout()


def test_pop3_and_imap_on_one_mailbox(imap):
    import poplib
    deliver(imap, [message("p1"), message("p2")])
    c = login(imap)
    c.select("INBOX")
    p = poplib.POP3(imap.host, imap.p110, timeout=TIMEOUT)
    p.stls(context=ctx())
    p.user(ALICE)
    p.pass_(PASSWORD)
    uidl = p.uidl()[1]
    assert len(uidl) == 2
    # UIDL is IMAP's UIDVALIDITY and UID (8 hex digits each)
    uv = int(c.untagged_responses["UIDVALIDITY"][0])
    uids = ok(c.fetch("1:2", "(UID)"))
    for line, f in zip(uidl, uids):
        n, u = line.split()
        uid = int(re.search(rb"UID (\d+)", f).group(1))
        assert u == b"%08x%08x" % (uv, uid), (line, f)
    p.dele(1)
    p.quit()
    ok(c.noop())
    assert c.untagged_responses.get("EXPUNGE") == [b"1"]
    data = ok(c.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"))
    assert b"p2" in data[0][1]
    # IMAP deletes, POP3 sees one message less at its next session
    ok(c.store("1", "+FLAGS", "(\\Deleted)"))
    ok(c.expunge())
    p = poplib.POP3(imap.host, imap.p110, timeout=TIMEOUT)
    p.stls(context=ctx())
    p.user(ALICE)
    p.pass_(PASSWORD)
    assert p.stat()[0] == 0
    p.quit()
    c.logout()


def test_bad_input_keeps_server_up(imap):
    r = Raw(imap)
    assert r.cmd("a", "SELECT")[-1].startswith("a BAD")
    r.send("\r\n")
    assert r.line().startswith("* BAD") or True
    r.send("b" * 20000 + "\r\n")
    assert r.closed()
    r2 = Raw(imap)
    r2.starttls()
    r2.login()
    deep = "(" * 200 + ")" * 200
    resp = r2.cmd("d", f"SEARCH {deep}")
    assert resp[-1].startswith("d BAD"), resp
    resp = r2.cmd("e", "SELECT INBOX")
    assert resp[-1].startswith("e OK"), resp
    resp = r2.cmd("f", "FETCH 1:4294967295 FLAGS")
    assert resp[-1].startswith("f BAD") or resp[-1].startswith("f OK")
    resp = r2.cmd("g", "LOGOUT")
    assert resp[0].startswith("* BYE")
    r3 = Raw(imap)
    assert r3.greeting.startswith("* OK")
