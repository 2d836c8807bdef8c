"""IMAP FETCH (RFC 9051 6.4.5, RFC 3516 BINARY, RFC 7162 CHANGEDSINCE):
sections of a multipart message, partials, BINARY of base64 and
quoted-printable parts, \\Seen as a side effect, a big message streamed
byte for byte, and FETCH 1:* over thousands of messages. Messages are put
straight into the user's Maildir (exact octets, fast); the server indexes
them when the mailbox is selected."""

import base64
import os
import re
import time

from test_imap import ALICE, PASSWORD, Raw, imap  # noqa: F401 (fixture)

LIT = re.compile(rb"~?\{(\d+)\}$")


class Client(Raw):
    """Raw, plus whole responses with their literals read as octets."""

    def rawline(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed; partial %r" % self.buf[:200])
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def octets(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed in a literal")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self):
        """(text, literals): text with each literal shown as {N} or ~{N}."""
        text, lits = b"", []
        while True:
            line = self.rawline()
            text += line
            m = LIT.search(line)
            if not m:
                return text.decode("utf-8", "replace"), lits
            lits.append(self.octets(int(m.group(1))))

    def run(self, tag, line):
        """Untagged responses [(text, lits)] and the tagged line."""
        self.send(f"{tag} {line}\r\n")
        out = []
        while True:
            text, lits = self.response()
            if text.startswith(tag + " "):
                return out, text
            out.append((text, lits))

    def ok(self, tag, line):
        out, tagged = self.run(tag, line)
        assert tagged.startswith(tag + " OK"), (tagged, out[:3])
        return out


def put(srv, msgs, user=ALICE):
    """Drops messages (bytes, CRLF) into new/ of the user's Maildir, in
    order (their mtimes increase, so their UIDs follow the list)."""
    md = srv.maildir(user)
    for d in ("new", "cur", "tmp"):
        os.makedirs(md / d, exist_ok=True)
    base = int(time.time()) - len(msgs) - 10
    for i, m in enumerate(msgs):
        p = md / "new" / f"{base + i}.M{i:06d}P1.fetchtest"
        p.write_bytes(m)
        os.utime(p, (base + i, base + i))


def session(srv, mailbox="INBOX", examine=False):
    c = Client(srv)
    c.starttls()
    c.login()
    c.ok("s", f"{'EXAMINE' if examine else 'SELECT'} {mailbox}")
    return c


def one(c, tag, line):
    """The literals of the single FETCH response to line."""
    out = [r for r in c.ok(tag, line) if " FETCH " in r[0]]
    assert len(out) == 1, out
    return out[0]


def crlf(s):
    return s.replace("\n", "\r\n").encode()


SIMPLE = crlf("""From: Sender <sender@remote.test>
To: <alice@example.test>
Subject: simple
Date: Tue, 01 Dec 2026 10:00:00 +0000

0123456789abcdefghij
""")

INNER_HDR = crlf("""From: Inner <inner@remote.test>
Subject: inner subject

""")
INNER_BODY = crlf("inner body line\n")

ATTACH = bytes(range(256)) * 4 + b"\x00\x00end"
QP_TEXT = "Gr=C3=BC=C3=9Fe, caf=C3=A9=\nsoft break and a long line\n"
QP_DECODED = "Grüße, café".encode() + b"soft break and a long line\r\n"

PART1_MIME = crlf("""Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

""")
PART1_BODY = crlf(QP_TEXT)
PART2_MIME = crlf("""Content-Type: message/rfc822

""")
PART3_MIME = crlf("""Content-Type: application/octet-stream
Content-Transfer-Encoding: base64

""")
PART3_BODY = "\r\n".join(
    base64.b64encode(ATTACH).decode()[i:i + 76]
    for i in range(0, len(base64.b64encode(ATTACH)), 76)).encode() + b"\r\n"
PART4_MIME = crlf("""Content-Type: application/x-strange
Content-Transfer-Encoding: x-uuencode

""")
PART4_BODY = crlf("begin 644 x\n`\nend\n")

TOP_HDR = crlf("""From: Sender <sender@remote.test>
To: <alice@example.test>
Subject: multipart
Date: Tue, 01 Dec 2026 10:00:00 +0000
X-Other: folded
 continuation
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="XyZ"

""")
TOP_BODY = (b"preamble\r\n--XyZ\r\n" + PART1_MIME + PART1_BODY +
            b"\r\n--XyZ\r\n" + PART2_MIME + INNER_HDR + INNER_BODY +
            b"\r\n--XyZ\r\n" + PART3_MIME + PART3_BODY +
            b"\r\n--XyZ\r\n" + PART4_MIME + PART4_BODY +
            b"\r\n--XyZ--\r\n")
MULTI = TOP_HDR + TOP_BODY


def test_sections_of_a_multipart_message(imap):
    put(imap, [MULTI])
    c = session(imap)
    text, lits = one(c, "a", "FETCH 1 (BODY.PEEK[1] BODY.PEEK[1.MIME] "
                     "BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT] BODY.PEEK[2])")
    assert lits == [PART1_BODY, PART1_MIME, INNER_HDR, INNER_BODY,
                    INNER_HDR + INNER_BODY], text
    for name in ("BODY[1]", "BODY[1.MIME]", "BODY[2.HEADER]",
                 "BODY[2.TEXT]", "BODY[2]"):
        assert name + " {" in text, text
    text, lits = one(c, "b", "FETCH 1 (BODY.PEEK[HEADER] BODY.PEEK[TEXT] "
                     "BODY.PEEK[])")
    assert lits == [TOP_HDR, TOP_BODY, MULTI]
    # The fields asked for, in the message's order, with the blank line.
    text, lits = one(c, "c", "FETCH 1 (BODY.PEEK[HEADER.FIELDS "
                     "(Subject From)])")
    assert "BODY[HEADER.FIELDS (Subject From)]" in text, text
    assert lits == [b"From: Sender <sender@remote.test>\r\n"
                    b"Subject: multipart\r\n\r\n"]
    text, lits = one(c, "d", "FETCH 1 (BODY.PEEK[HEADER.FIELDS.NOT "
                     "(from subject date mime-version content-type)])")
    assert lits == [b"To: <alice@example.test>\r\n"
                    b"X-Other: folded\r\n continuation\r\n\r\n"], text
    text, lits = one(c, "e", "FETCH 1 BODY.PEEK[2.HEADER.FIELDS (SUBJECT)]")
    assert lits == [b"Subject: inner subject\r\n\r\n"], text
    # No such part: an empty string, not an error.
    text, lits = one(c, "f", "FETCH 1 (BODY.PEEK[9] BODY.PEEK[1.5])")
    assert 'BODY[9] ""' in text and 'BODY[1.5] ""' in text, text
    # Nothing above set \Seen.
    text, _ = one(c, "g", "FETCH 1 FLAGS")
    assert "FLAGS ()" in text, text


def test_rfc822_items_and_structure(imap):
    put(imap, [MULTI])
    c = session(imap)
    text, lits = one(c, "a", "FETCH 1 (RFC822.HEADER RFC822.SIZE)")
    assert lits == [TOP_HDR] and "RFC822.HEADER {" in text, text
    assert f"RFC822.SIZE {len(MULTI)}" in text
    text, lits = one(c, "b", "FETCH 1 (BODYSTRUCTURE BODY ENVELOPE)")
    up = text.upper()
    assert '("TEXT" "PLAIN"' in up and '"MIXED"' in up, text
    assert '"multipart"' in text and "BODYSTRUCTURE (" in text, text
    text, lits = one(c, "c", "FETCH 1 RFC822.TEXT")
    assert lits == [TOP_BODY], text
    assert re.search(r"FLAGS \(\\Seen\)", text), text
    text, lits = one(c, "d", "FETCH 1 RFC822")
    assert lits == [MULTI] and "RFC822 {" in text, text
    # Already seen: no FLAGS added this time.
    assert "FLAGS" not in text, text


def test_partials(imap):
    put(imap, [SIMPLE])
    c = session(imap)
    size = len(SIMPLE)
    hdr_len = SIMPLE.index(b"\r\n\r\n") + 4
    text, lits = one(c, "a", "FETCH 1 (BODY.PEEK[]<0.10> BODY.PEEK[]<5.7>)")
    assert lits == [SIMPLE[:10], SIMPLE[5:12]], text
    assert "BODY[]<0> {10}" in text and "BODY[]<5> {7}" in text, text
    text, lits = one(c, "b", f"FETCH 1 BODY.PEEK[]<{size - 3}.100>")
    assert lits == [SIMPLE[-3:]], text
    text, lits = one(c, "c", f"FETCH 1 BODY.PEEK[]<{size + 10}.5>")
    assert f'BODY[]<{size + 10}> ""' in text, text
    text, lits = one(c, "d", "FETCH 1 BODY.PEEK[TEXT]<4.6>")
    assert lits == [SIMPLE[hdr_len + 4:hdr_len + 10]], text
    text, lits = one(c, "e", "FETCH 1 BODY.PEEK[HEADER.FIELDS (To)]<2.5>")
    assert lits == [b"To: <alice@example.test>\r\n\r\n"[2:7]], text
    text, lits = one(c, "f", "FETCH 1 BODY[1]<0.4>")
    assert lits == [b"0123"] and "\\Seen" in text, text


def test_binary_base64_and_quoted_printable(imap):
    put(imap, [MULTI])
    c = session(imap)
    text, lits = one(c, "a", "FETCH 1 (BINARY.PEEK[3] BINARY.PEEK[1] "
                     "BINARY.SIZE[3] BINARY.SIZE[1])")
    # NULs in the decoded attachment: literal8.
    assert f"BINARY[3] ~{{{len(ATTACH)}}}" in text, text
    assert f"BINARY[1] {{{len(QP_DECODED)}}}" in text, text
    assert lits == [ATTACH, QP_DECODED]
    assert f"BINARY.SIZE[3] {len(ATTACH)}" in text, text
    assert f"BINARY.SIZE[1] {len(QP_DECODED)}" in text, text
    text, lits = one(c, "b", "FETCH 1 BINARY.PEEK[3]<2.4>")
    assert lits == [ATTACH[2:6]] and "BINARY[3]<2>" in text, text
    text, lits = one(c, "c", "FETCH 1 BINARY.PEEK[1]<0.3>")
    assert lits == [b"Gr\xc3"] and "BINARY[1]<0> {3}" in text, text
    # The whole message as stored; no such part: NIL / 0.
    text, lits = one(c, "d", "FETCH 1 (BINARY.PEEK[] BINARY.PEEK[7] "
                     "BINARY.SIZE[7])")
    assert lits == [MULTI], text
    assert "BINARY[7] NIL" in text and "BINARY.SIZE[7] 0" in text, text
    out, tagged = c.run("e", "FETCH 1 BINARY.PEEK[4]")
    assert tagged.startswith("e NO [UNKNOWN-CTE]"), (tagged, out)
    assert not [r for r in out if "BINARY[4]" in r[0]], out
    text, _ = one(c, "f", "FETCH 1 FLAGS")
    assert "FLAGS ()" in text, text
    text, lits = one(c, "g", "FETCH 1 BINARY[1]")
    assert lits == [QP_DECODED] and "\\Seen" in text, text


def test_seen_by_body_but_not_peek_nor_examine(imap):
    put(imap, [SIMPLE, SIMPLE, SIMPLE])
    c = session(imap, examine=True)
    text, lits = one(c, "a", "FETCH 1 BODY[]")
    assert lits == [SIMPLE] and "FLAGS" not in text, text
    c.ok("x", "CLOSE")
    c.ok("s2", "SELECT INBOX")
    text, _ = one(c, "b", "FETCH 1 (BODY.PEEK[] BINARY.PEEK[1])")
    assert "FLAGS" not in text, text
    out = c.ok("c", "FETCH 1:2 (FLAGS BODY[TEXT])")
    assert len(out) == 2 and all("FLAGS (\\Seen)" in t for t, _ in out), out
    out = c.ok("d", "FETCH 1:3 (UID BODY[HEADER])")
    flagged = [t for t, _ in out if "FLAGS (\\Seen)" in t]
    assert len(out) == 3 and len(flagged) == 1, out
    assert flagged[0].startswith("* 3 FETCH"), out
    out = c.ok("e", "FETCH 1:* FLAGS")
    assert all("\\Seen" in t for t, _ in out), out
    # Another session sees the flag stored.
    d = session(imap)
    out = d.ok("f", "FETCH 1:* FLAGS")
    assert len(out) == 3 and all("\\Seen" in t for t, _ in out), out


def test_uid_fetch_changedsince_and_vanished(imap):
    put(imap, [SIMPLE, SIMPLE, SIMPLE])
    c = session(imap)
    out = c.ok("a", "UID FETCH 1:* (FLAGS)")
    assert [t for t, _ in out][0] == "* 1 FETCH (UID 1 FLAGS ())", out
    out = c.ok("b", "UID FETCH 1:* (MODSEQ)")
    assert out[1][0].startswith("* 2 FETCH (UID 2 MODSEQ ("), out
    modseq = max(int(re.search(r"MODSEQ \((\d+)\)", t).group(1))
                 for t, _ in out)
    c.ok("c", "STORE 3 +FLAGS.SILENT (\\Flagged)")
    out = c.ok("d", f"FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq})")
    assert len(out) == 1 and out[0][0].startswith("* 3 FETCH"), out
    assert "MODSEQ (" in out[0][0], out
    _, tagged = c.run("e", f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE 1 "
                      "VANISHED)")
    assert tagged.startswith("e BAD"), tagged
    # Once CONDSTORE is in use every FETCH response carries MODSEQ.
    out = c.ok("f", "FETCH 1 UID")
    assert "MODSEQ (" in out[0][0], out


def test_nul_in_a_header_is_sent_as_a_space(imap):
    msg = (b"From: a@remote.test\r\nSubject: nul\x00here\r\n\r\n"
           b"body\x00with nul\r\n")
    put(imap, [msg])
    c = session(imap)
    text, lits = one(c, "a", "FETCH 1 (BODY.PEEK[HEADER] BODY.PEEK[TEXT] "
                     "BINARY.PEEK[1])")
    assert lits[0] == msg[:msg.index(b"\r\n\r\n") + 4].replace(b"\0", b" ")
    assert lits[1] == b"body with nul\r\n", text
    assert "BINARY[1] ~{" in text and lits[2] == b"body\x00with nul\r\n"
    text, lits = one(c, "b", "FETCH 1 BODY.PEEK[HEADER.FIELDS (Subject)]")
    assert lits == [b"Subject: nul here\r\n\r\n"], text


def test_big_message_streamed_whole(imap):
    rnd = os.urandom(3 * 1024 * 1024)
    body = base64.encodebytes(rnd).replace(b"\n", b"\r\n")
    big = (b"From: a@remote.test\r\nSubject: big\r\n"
           b"Content-Type: application/octet-stream\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\n" + body)
    assert len(big) > 4 * 1024 * 1024
    put(imap, [SIMPLE, big, big])
    c = session(imap)
    text, lits = one(c, "a", "FETCH 2 (RFC822.SIZE BODY.PEEK[])")
    assert f"RFC822.SIZE {len(big)}" in text
    assert lits == [big]
    text, lits = one(c, "b", "FETCH 2 BINARY.PEEK[1]")
    assert lits == [rnd], text[:200]
    # Several big ones in one command, with a slow reader: the output
    # waits for the client, and nothing is lost or reordered.
    c.send("c FETCH 1:3 (BODY.PEEK[] BODY.PEEK[HEADER])\r\n")
    time.sleep(1)
    got = []
    while True:
        text, lits = c.response()
        if text.startswith("c "):
            assert text.startswith("c OK"), text
            break
        got.append((text, lits))
    assert [l for _, l in got] == [
        [m, m[:m.index(b"\r\n\r\n") + 4]] for m in (SIMPLE, big, big)]
    assert c.ok("d", "NOOP") == []


def test_fetch_all_of_2000_messages(imap):
    msgs = [(f"From: s{i}@remote.test\r\nSubject: number {i}\r\n"
             f"Message-ID: <{i}@remote.test>\r\n\r\nbody {i}\r\n").encode()
            for i in range(2000)]
    put(imap, msgs)
    c = session(imap)
    t0 = time.monotonic()
    out = c.ok("a", "FETCH 1:* (UID FLAGS RFC822.SIZE INTERNALDATE "
               "BODY.PEEK[HEADER.FIELDS (Subject)])")
    took = time.monotonic() - t0
    assert len(out) == 2000
    for i, (text, lits) in enumerate(out):
        assert text.startswith(f"* {i + 1} FETCH (UID {i + 1} FLAGS () "
                               f"RFC822.SIZE {len(msgs[i])} INTERNALDATE \""), text
        assert re.search(r'INTERNALDATE "\d\d-[A-Z][a-z]{2}-\d{4} '
                         r'\d\d:\d\d:\d\d \+0000"', text), text
        assert lits == [f"Subject: number {i}\r\n\r\n".encode()]
    out = c.ok("b", "UID FETCH 1:* (FLAGS)")
    assert len(out) == 2000
    out = c.ok("c", "FETCH 1:* ENVELOPE")
    assert len(out) == 2000 and '"number 1999"' in out[-1][0]
    out = c.ok("d", "FETCH 1990:* BODY[TEXT]")
    assert len(out) == 11 and out[-1][1] == [b"body 1999\r\n"]
    assert all("\\Seen" in t for t, _ in out)
    print(f"FETCH 1:* of 2000 with HEADER.FIELDS: {took:.3f}s")


def test_message_gone_under_the_session(imap):
    put(imap, [SIMPLE, MULTI, SIMPLE])
    c = session(imap)
    # Another Maildir reader removes the second message's file.
    victim = [p for p in imap.maildir_files(ALICE)
              if p.read_bytes() == MULTI]
    assert len(victim) == 1
    victim[0].unlink()
    out, tagged = c.run("a", "FETCH 1:3 (UID BODY.PEEK[HEADER])")
    assert tagged.startswith("a NO [EXPUNGEISSUED]"), (tagged, out)
    fetched = [t for t, _ in out if " FETCH " in t]
    assert [t.split(" (")[0] for t in fetched] == ["* 1 FETCH", "* 3 FETCH"]
    # What the view knows is still served (RFC 9051 allows either).
    out = c.ok("b", "FETCH 2 (UID FLAGS)")
    assert out[0][0] == "* 2 FETCH (UID 2 FLAGS ())", out
    # Once the expunge may be told, it is, and the rest goes on.
    out = c.ok("c", "NOOP")
    assert any("EXPUNGE" in t or "VANISHED" in t for t, _ in out), out
    out = c.ok("d", "FETCH 1:* UID")
    assert len(out) == 2


def test_client_gone_in_the_middle_of_a_big_fetch(imap):
    big = (b"Subject: big\r\n\r\n" + (b"z" * 998 + b"\r\n") * 4000)
    put(imap, [big] * 6)
    c = session(imap)
    c.send("a FETCH 1:* (BODY.PEEK[] BINARY.PEEK[1])\r\n")
    c.octets(100000)
    c.s.close()
    # The server is fine, and frees what the FETCH held (ASan checks).
    d = session(imap)
    text, lits = one(d, "b", "FETCH 6 BODY.PEEK[]")
    assert lits == [big]


def test_macros_and_savedate(imap):
    put(imap, [SIMPLE])
    c = session(imap)
    text, _ = one(c, "a", "FETCH 1 FULL")
    for item in ("FLAGS ()", "INTERNALDATE \"", "RFC822.SIZE ",
                 "ENVELOPE (", "BODY ("):
        assert item in text, text
    text, _ = one(c, "b", "FETCH 1 FAST")
    assert "ENVELOPE" not in text and "RFC822.SIZE" in text, text
    text, _ = one(c, "c", "FETCH 1 (SAVEDATE)")
    assert re.search(r'SAVEDATE "\d\d-[A-Z][a-z]{2}-\d{4} '
                     r'\d\d:\d\d:\d\d \+0000"', text), text


def test_uid_fetch_vanished_earlier(imap):
    put(imap, [SIMPLE] * 5)
    c = Client(imap)
    c.starttls()
    c.login()
    c.ok("e", "ENABLE QRESYNC")
    out = c.ok("s", "SELECT INBOX")
    hms = int(re.search(r"HIGHESTMODSEQ (\d+)",
                        " ".join(t for t, _ in out)).group(1))
    c.ok("d", "STORE 2,4 +FLAGS.SILENT (\\Deleted)")
    c.ok("x", "EXPUNGE")
    out = c.ok("f", f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {hms} VANISHED)")
    assert out[0][0] == "* VANISHED (EARLIER) 2,4", out
    out = c.ok("g", f"UID FETCH 3:5 (FLAGS) (CHANGEDSINCE {hms} VANISHED)")
    assert out[0][0] == "* VANISHED (EARLIER) 4", out
    assert all("VANISHED" not in t for t, _ in out[1:]), out
    out = c.ok("h", f"UID FETCH 5:4,1,2:1 (FLAGS) (VANISHED CHANGEDSINCE "
               f"{hms})")
    assert out[0][0] == "* VANISHED (EARLIER) 2,4", out
    out = c.ok("i", f"UID FETCH 3,5 (FLAGS) (CHANGEDSINCE {hms} VANISHED)")
    assert all("VANISHED" not in t for t, _ in out), out
