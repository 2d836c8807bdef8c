"""IMAP commands that search and change mail, as raw transcripts: SEARCH
keys (decoded bodies, headers, dates, OR/NOT trees, sets), ESEARCH and
SEARCHRES, STORE with UNCHANGEDSINCE, EXPUNGE and UID EXPUNGE, COPY and
MOVE with their refusals, APPEND and MULTIAPPEND (all or nothing)."""

import base64
import re

import pytest

from test_imap import ALICE, Raw, deliver, imap, message  # noqa: F401


def session(srv, select="INBOX"):
    r = Raw(srv)
    r.starttls()
    r.login()
    if select:
        resp = r.cmd("sel", f"SELECT {select}")
        assert resp[-1].startswith("sel OK"), resp
    return r


def search(r, tag, args):
    resp = r.cmd(tag, args)
    assert resp[-1].startswith(f"{tag} OK"), resp
    hits = [l for l in resp if l.startswith("* SEARCH")]
    assert len(hits) == 1, resp
    return hits[0][len("* SEARCH"):].split()


def search_lit(r, tag, args, text):
    """SEARCH whose last argument is a synchronizing literal (8-bit)."""
    data = text.encode()
    r.send(f"{tag} {args} {{{len(data)}}}\r\n")
    assert r.line().startswith("+"), tag
    r.send(data + b"\r\n")
    resp = r.until_tagged(tag)
    assert resp[-1].startswith(f"{tag} OK"), resp
    hits = [l for l in resp if l.startswith("* SEARCH")]
    assert len(hits) == 1, resp
    return hits[0][len("* SEARCH"):].split()


def append(r, tag, mailbox, data, extra=""):
    r.send(f"{tag} APPEND {mailbox}{extra} {{{len(data)}+}}\r\n".encode()
           + data + b"\r\n")
    return r.until_tagged(tag)


def mime_message(subject, parts_text):
    return (f"From: <sender@remote.test>\r\nTo: <{ALICE}>\r\n"
            f"Subject: {subject}\r\nDate: Tue, 01 Dec 2026 10:00:00 +0000\r\n"
            "MIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
            f"{parts_text}--b1--\r\n").encode()


def test_search_decoded_bodies_headers_and_trees(imap):
    b64 = base64.b64encode("Ein schönes Grüßwort\r\n".encode()).decode()
    m1 = mime_message("encoded", "--b1\r\nContent-Type: text/plain; "
                      "charset=utf-8\r\nContent-Transfer-Encoding: base64"
                      f"\r\n\r\n{b64}\r\n")
    m2 = mime_message("latin", "--b1\r\nContent-Type: text/plain; "
                      "charset=iso-8859-1\r\nContent-Transfer-Encoding: "
                      "quoted-printable\r\n\r\nsch=F6n und gut\r\n")
    m3 = message("plain", extra="X-Tracker: abc-123\r\n")
    deliver(imap, [m1, m2, m3])
    r = session(imap)
    assert search_lit(r, "a", "SEARCH CHARSET UTF-8 BODY", "grüßwort") == [
        "1"]
    assert search_lit(r, "b", "SEARCH BODY", "SCHÖN") == ["1", "2"]
    assert search(r, "c", "SEARCH TEXT abc-123") == ["3"]
    assert search(r, "d", "SEARCH HEADER X-Tracker abc") == ["3"]
    assert search(r, "e", 'SEARCH HEADER X-Tracker ""') == ["3"]
    assert search(r, "f", 'SEARCH HEADER X-Missing ""') == []
    assert search(r, "g", "SEARCH OR BODY gut (SUBJECT plain)") == ["2", "3"]
    assert search(r, "h", "SEARCH NOT OR BODY gut SUBJECT plain") == ["1"]
    assert search(r, "i", "SEARCH (OR 1 3) NOT (SUBJECT plain)") == ["1"]
    assert search(r, "j", "SEARCH NOT NOT NOT 2") == ["1", "3"]
    assert search(r, "k", "SEARCH 2:* UNSEEN") == ["2", "3"]
    assert search(r, "l", "UID SEARCH UID 3:99") == ["3"]
    assert search(r, "m", "UID SEARCH UID 99:*") == ["3"]
    assert search(r, "n", "SEARCH SMALLER 1") == []
    assert search(r, "o", "SEARCH BODY nowhere-to-be-found") == []
    resp = r.cmd("p", "SEARCH CHARSET KOI8-R ALL")
    assert resp[-1].startswith("p NO [BADCHARSET (UTF-8 US-ASCII)]"), resp


def test_search_dates_sizes_keywords(imap):
    r = session(imap)
    late = (f"From: <s@remote.test>\r\nTo: <{ALICE}>\r\nSubject: late\r\n"
            "Date: Mon, 30 Nov 2026 23:30:00 -0800\r\n\r\nbody\r\n").encode()
    resp = append(r, "a1", "INBOX", late, ' "15-Mar-2025 08:00:00 +0000"')
    assert resp[-1].startswith("a1 OK [APPENDUID"), resp
    resp = append(r, "a2", "INBOX", message("now", body="x" * 500 + "\r\n"),
                  " ($Work)")
    assert resp[-1].startswith("a2 OK"), resp
    r.cmd("n", "NOOP")
    # The Date: header's own day (30 Nov in -0800), not its UTC day.
    assert search(r, "b", "SEARCH SENTON 30-Nov-2026") == ["1"]
    assert search(r, "c", "SEARCH SENTON 1-Dec-2026") == ["2"]
    assert search(r, "d", "SEARCH SENTSINCE 1-Dec-2026") == ["2"]
    assert search(r, "e", "SEARCH SENTBEFORE 1-Dec-2026") == ["1"]
    assert search(r, "f", "SEARCH ON 15-Mar-2025") == ["1"]
    assert search(r, "g", "SEARCH BEFORE 16-Mar-2025") == ["1"]
    assert search(r, "h", "SEARCH SINCE 16-Mar-2025") == ["2"]
    assert search(r, "i", "SEARCH OLDER 86400") == ["1"]
    assert search(r, "j", "SEARCH YOUNGER 86400") == ["2"]
    assert search(r, "k", "SEARCH LARGER 400") == ["2"]
    assert search(r, "l", "SEARCH SMALLER 400") == ["1"]
    assert search(r, "m", "SEARCH KEYWORD $work") == ["2"]
    assert search(r, "o", "SEARCH UNKEYWORD $Work") == ["1"]
    assert search(r, "p", "SEARCH SAVEDATESUPPORTED") == ["1", "2"]
    assert search(r, "q", "SEARCH NEW") == []
    assert search(r, "s", "SEARCH OLD") == ["1", "2"]


def test_esearch_empty_modseq_and_saved_results(imap):
    deliver(imap, [message(f"m{i}") for i in range(4)])
    r = session(imap)
    resp = r.cmd("a", "SEARCH RETURN (MIN MAX ALL COUNT) SUBJECT nothing")
    assert resp[0] == '* ESEARCH (TAG "a") COUNT 0', resp
    resp = r.cmd("b", "UID SEARCH RETURN () 1:2,4")
    assert resp[0] == '* ESEARCH (TAG "b") UID ALL 1:2,4', resp
    r.cmd("c", "STORE 3 +FLAGS (\\Flagged)")
    resp = r.cmd("d", "SEARCH MODSEQ 1")
    assert re.match(r"\* SEARCH 1 2 3 4 \(MODSEQ \d+\)$", resp[0]), resp
    resp = r.cmd("e", "SEARCH RETURN (SAVE MIN) FLAGGED")
    assert resp[0] == '* ESEARCH (TAG "e") MIN 3', resp
    assert search(r, "f", "SEARCH $") == ["3"]
    assert search(r, "g", "SEARCH NOT $") == ["1", "2", "4"]
    resp = r.cmd("h", "SEARCH RETURN (SAVE) CHARSET BOGUS ALL")
    assert resp[-1].startswith("h NO [BADCHARSET"), resp
    assert search(r, "i", "SEARCH $") == []


def test_store_silent_unchangedsince_and_modified(imap):
    deliver(imap, [message("a"), message("b"), message("c")])
    r = session(imap)
    resp = r.cmd("a", "STORE 1:3 +FLAGS.SILENT (\\Seen)")
    assert resp == ["a OK STORE completed"], resp
    resp = r.cmd("b", "UID STORE 2 FLAGS ($One \\Draft)")
    assert "* FLAGS (" in " ".join(resp) and "$One" in resp[0], resp
    line = [l for l in resp if "FETCH" in l][0]
    assert re.match(r"\* 2 FETCH \(FLAGS \(\\Draft \$One\) UID 2\)$", line), \
        resp
    resp = r.cmd("c", "FETCH 1:3 (MODSEQ)")
    mods = [int(x) for x in re.findall(r"MODSEQ \((\d+)\)", " ".join(resp))]
    assert len(mods) == 3
    resp = r.cmd("d", f"UID STORE 1:3 (UNCHANGEDSINCE {mods[0]}) "
                 "+FLAGS.SILENT (\\Flagged)")
    fetches = [l for l in resp if "FETCH" in l]
    assert resp[-1].startswith("d OK [MODIFIED 2]"), resp
    assert len(fetches) == 2 and all("MODSEQ" in l and "FLAGS" not in l
                                     for l in fetches), resp
    assert search(r, "e", "SEARCH FLAGGED") == ["1", "3"]
    resp = r.cmd("f", "STORE 2 (UNCHANGEDSINCE 0) -FLAGS (\\Seen)")
    assert resp[-1].startswith("f OK [MODIFIED 2]"), resp
    # A message number beyond EXISTS is an error; UIDs are not.
    assert r.cmd("g", "STORE 9 +FLAGS (\\Seen)")[-1].startswith("g BAD")
    assert r.cmd("h", "UID STORE 9 +FLAGS (\\Seen)") == [
        "h OK STORE completed"]


def test_readonly_expunge_and_uid_expunge(imap):
    deliver(imap, [message(f"m{i}") for i in range(4)])
    r = session(imap, select=None)
    r.cmd("x", "EXAMINE INBOX")
    assert r.cmd("a", "STORE 1 +FLAGS (\\Deleted)")[-1].startswith("a NO")
    assert r.cmd("b", "EXPUNGE")[-1].startswith("b NO")
    assert r.cmd("c", "MOVE 1 Trash")[-1].startswith("c NO")
    assert r.cmd("d", "COPY 1 Trash")[-1].startswith("d OK")
    r.cmd("s", "SELECT INBOX")
    r.cmd("e", "STORE 1:3 +FLAGS.SILENT (\\Deleted)")
    resp = r.cmd("f", "UID EXPUNGE 2:4")
    assert resp == ["* 3 EXPUNGE", "* 2 EXPUNGE", "f OK EXPUNGE completed"], \
        resp
    resp = r.cmd("g", "UID SEARCH ALL")
    assert resp[0] == "* SEARCH 1 4", resp
    resp = r.cmd("h", "EXPUNGE")
    assert resp == ["* 1 EXPUNGE", "h OK EXPUNGE completed"], resp


def test_copy_move_refusals_and_uidplus(imap):
    deliver(imap, [message(f"m{i}") for i in range(3)])
    r = session(imap)
    resp = r.cmd("a", "MOVE 1 Nowhere")
    assert resp[-1].startswith("a NO [TRYCREATE]"), resp
    resp = r.cmd("b", "MOVE 1 INBOX")
    assert resp[-1].startswith("b NO"), resp
    resp = r.cmd("c", "UID COPY 50:60 Archive")
    assert resp == ["c OK COPY completed"], resp
    resp = r.cmd("d", "UID MOVE 2:3 Archive")
    assert re.match(r"\* OK \[COPYUID \d+ 2:3 1:2\]", resp[0]), resp
    assert resp[1:] == ["* 3 EXPUNGE", "* 2 EXPUNGE", "d OK MOVE completed"], \
        resp
    resp = r.cmd("e", "COPY 1 INBOX")
    assert "* 2 EXISTS" in resp, resp
    assert re.match(r"e OK \[COPYUID \d+ 1 4\]", resp[-1]), resp


def test_move_with_qresync_reports_vanished(imap):
    deliver(imap, [message(f"m{i}") for i in range(3)])
    r = Raw(imap)
    r.starttls()
    r.login()
    r.cmd("e", "ENABLE QRESYNC")
    r.cmd("s", "SELECT INBOX")
    resp = r.cmd("a", "UID MOVE 1,3 Trash")
    assert resp[1:] == ["* VANISHED 1,3", "a OK MOVE completed"], resp


def test_multiappend_all_or_nothing(imap):
    r = session(imap, select=None)
    a, b = message("one"), message("two")
    r.send(f"a APPEND INBOX {{{len(a)}+}}\r\n".encode() + a +
           b" {0+}\r\n\r\n")
    resp = r.until_tagged("a")
    assert resp[-1].startswith("a NO"), resp
    # The second message fails in the store (too many keywords for one
    # mailbox): the first, already stored, is taken back.
    kw1 = " ".join(f"$k{i}" for i in range(40))
    kw2 = " ".join(f"$j{i}" for i in range(40))
    r.send(f"b APPEND INBOX ({kw1}) {{{len(a)}+}}\r\n".encode() + a +
           f" ({kw2}) {{{len(b)}+}}\r\n".encode() + b + b"\r\n")
    resp = r.until_tagged("b")
    assert resp[-1].startswith("b NO"), resp
    resp = r.cmd("c", f"APPEND Nowhere {{{len(a)}+}}\r\n" + a.decode())
    assert resp[-1].startswith("c NO [TRYCREATE]"), resp
    resp = r.cmd("d", "STATUS INBOX (MESSAGES)")
    assert "MESSAGES 0" in resp[0], resp
    assert len(imap.maildir_files(ALICE)) == 0


def test_append_to_selected_mailbox_sends_exists(imap):
    r = session(imap)
    resp = append(r, "a", "INBOX", message("x"), " (\\Flagged $Blue)")
    assert "* 1 EXISTS" in resp, resp
    assert re.match(r"a OK \[APPENDUID \d+ 1\]", resp[-1]), resp
    resp = r.cmd("b", "FETCH 1 FLAGS")
    assert "\\Flagged" in resp[0] and "$Blue" in resp[0], resp
    r.send(b"c APPEND INBOX ~{5+}\r\nab\0c\n\r\n")
    resp = r.until_tagged("c")
    assert resp[-1].startswith("c OK") or resp[-1].startswith("c NO"), resp
    assert r.cmd("d", "NOOP")[-1] == "d OK NOOP completed"


@pytest.fixture
def small_imap(server):
    from conftest import free_port
    p143, p993 = free_port(), free_port()
    srv = server(extra={"imap": {"listen": f"127.0.0.1:{p143}"},
                        "imaps": {"listen": f"127.0.0.1:{p993}"}},
                 limits={"max_errors": 100, "max_message_size": "100k"})
    srv.p143, srv.p993 = p143, p993
    return srv


def test_append_over_the_limit_is_toobig(small_imap):
    r = session(small_imap, select=None)
    big = message("big", body=("y" * 998 + "\r\n") * 120)
    r.send(f"a APPEND INBOX {{{len(big)}}}\r\n".encode())
    line = r.line()
    assert line.startswith("a NO [TOOBIG]"), line
    ok = message("ok", body=("y" * 998 + "\r\n") * 70)
    resp = append(r, "b", "INBOX", ok)
    assert resp[-1].startswith("b OK [APPENDUID"), resp


def test_hostile_sets_and_programs_keep_the_session(imap):
    deliver(imap, [message("a"), message("b")])
    r = session(imap)
    assert search(r, "a", "SEARCH $") == []
    assert r.cmd("b", "UID COPY $ Archive") == ["b OK COPY completed"]
    resp = r.cmd("c", "UID STORE 1:4294967295 +FLAGS.SILENT (\\Seen)")
    assert resp == ["c OK STORE completed"], resp
    assert search(r, "d", "SEARCH " + "NOT " * 15 + "SEEN") == []
    assert search(r, "e", "SEARCH " + "(" * 15 + "ALL" + ")" * 15) == [
        "1", "2"]
    assert search(r, "f", "UID SEARCH 1:* UID 1,2:*," + ",".join(
        str(i) for i in range(3, 3000))) == ["1", "2"]
    assert search(r, "g", "SEARCH 7:9") == []
    assert r.cmd("h", "STORE 1 +FLAGS (\\Recent)")[-1].startswith("h BAD")
    assert r.cmd("i", "STORE 1 +FLAGS (\\Bogus)")[-1].startswith("i BAD")
    resp = r.cmd("j", "SEARCH LARGER 18446744073709551615")
    assert resp[-1].startswith("j"), resp
    assert r.cmd("k", "NOOP")[-1] == "k OK NOOP completed"
