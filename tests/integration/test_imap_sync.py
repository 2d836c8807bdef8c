"""How a selected mailbox follows changes: other sessions' changes are
read from the index alone (store_delta.c), changes made behind the
index (a Maildir reader) are found by a scan, and SEARCH of the
From/To/Cc/Bcc/Subject fields answers from the index's header cache."""
import os
import sqlite3
import struct

from test_imap import Raw, deliver, imap, login, message, ok  # noqa: F401


def raw_session(srv):
    r = Raw(srv)
    r.starttls()
    r.login()
    assert r.cmd("s", "SELECT INBOX")[-1].startswith("s OK")
    return r


def maildir(srv, sub="cur"):
    return srv.data_dir / "mail" / "example.test" / "alice" / sub


def file_of(srv, subject):
    for p in maildir(srv).iterdir():
        if f"Subject: {subject}\r\n".encode() in p.read_bytes():
            return p
    raise AssertionError("no file for %r" % subject)


def test_other_sessions_changes_at_once(imap):
    deliver(imap, [message("one"), message("two"), message("three")])
    a = raw_session(imap)
    b = login(imap)
    b.select("INBOX")
    ok(b.store("2", "+FLAGS", "(\\Flagged $Later)"))
    # Seen at the very next command, whatever it is.
    lines = a.cmd("f", "FETCH 3 (FLAGS)")
    assert any(l.startswith("* 2 FETCH") and "\\Flagged" in l and
               "$Later" in l for l in lines), lines
    assert any("$Later" in l and l.startswith("* FLAGS") for l in lines)
    ok(b.append("INBOX", None, None,
                message("four").replace(b"\n", b"\r\n").replace(
                    b"\r\r\n", b"\r\n")))
    lines = a.cmd("n", "NOOP")
    assert "* 4 EXISTS" in lines, lines
    lines = a.cmd("f2", "FETCH 4 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert any("Subject: four" in l for l in lines), lines
    b.logout()


def test_expunge_waits_for_a_command_that_may_carry_it(imap):
    deliver(imap, [message("one"), message("two"), message("three")])
    a = raw_session(imap)
    b = login(imap)
    b.select("INBOX")
    ok(b.store("1", "+FLAGS", "(\\Deleted)"))
    ok(b.expunge())
    # RFC 9051 7.5.1: no EXPUNGE while answering FETCH, STORE, SEARCH.
    for tag, cmd in (("f", "FETCH 1:* (FLAGS)"),
                     ("t", "STORE 3 +FLAGS (\\Seen)"),
                     ("q", "SEARCH ALL")):
        lines = a.cmd(tag, cmd)
        assert lines[-1].startswith(tag + " OK"), lines
        assert not any(l.endswith(" EXPUNGE") for l in lines), lines
    # Until then the numbers stay: the gone message matches nothing.
    lines = a.cmd("q2", "SEARCH ALL")
    assert "* SEARCH 2 3" in lines, lines
    lines = a.cmd("n", "NOOP")
    assert "* 1 EXPUNGE" in lines, lines
    lines = a.cmd("q3", "SEARCH ALL")
    assert "* SEARCH 1 2" in lines, lines
    # What b's EXPUNGE removed stays removed; the \Seen a set is kept.
    lines = a.cmd("f2", "FETCH 1:* (UID FLAGS)")
    fetches = [l for l in lines if l.startswith("* ") and " FETCH " in l]
    assert len(fetches) == 2 and "UID 3" in fetches[1], lines
    assert "\\Seen" in fetches[1], lines
    b.logout()


def test_changes_behind_the_index_are_found(imap):
    deliver(imap, [message("one"), message("two"), message("three")])
    a = raw_session(imap)
    # A Maildir reader (mutt, say) marks "two" seen, removes "one" and
    # drops a message straight into cur/.
    two = file_of(imap, "two")
    os.rename(two, str(two).split(":2,")[0] + ":2,S")
    os.unlink(file_of(imap, "one"))
    (maildir(imap) / "1900000000.M1P1.elsewhere:2,F").write_bytes(
        message("dropped").replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    lines = a.cmd("n", "NOOP")
    assert "* 1 EXPUNGE" in lines, lines
    assert "* 3 EXISTS" in lines, lines
    assert any(l.startswith("* 1 FETCH") and "\\Seen" in l
               for l in lines), lines
    lines = a.cmd("f", "FETCH 3 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
    assert any("\\Flagged" in l for l in lines), lines
    assert any("Subject: dropped" in l for l in lines), lines


def cache_blob(subject):
    """A header search cache (mime_hdrcache_make's format, version 1)
    that holds only a Subject."""
    v = subject.encode()
    return bytes([1, 5]) + struct.pack("<I", len(v)) + v


def test_header_search_reads_the_index(imap):
    deliver(imap, [message("Alpha topic"), message("Beta topic",
                   extra="Cc: Carol <carol@elsewhere.test>\r\n")])
    a = raw_session(imap)
    assert "* SEARCH 2" in a.cmd("s1", 'SEARCH SUBJECT "beta"')
    assert "* SEARCH 2" in a.cmd("s2", 'SEARCH CC "CAROL"')
    assert "* SEARCH 1 2" in a.cmd("s3", 'SEARCH FROM "sender@remote"')
    assert "* SEARCH" in a.cmd("s4", 'SEARCH TO "nobody"')
    # The cache is what answers: give message 1 another Subject in the
    # index than in its file, and SEARCH believes the index.
    db = sqlite3.connect(str(maildir(imap, "index.db").parent /
                             "index.db"), timeout=10)
    db.execute("UPDATE messages SET hdrsearch = ? WHERE uid = 1",
               (cache_blob("only in the index"),))
    # An index made by an older correo has no cache: files answer.
    db.execute("UPDATE messages SET hdrsearch = NULL WHERE uid = 2")
    db.commit()
    db.close()
    assert "* SEARCH 1" in a.cmd("s5", 'SEARCH SUBJECT "in the index"')
    assert "* SEARCH" in a.cmd("s6", 'SEARCH SUBJECT "alpha"')
    assert "* SEARCH 2" in a.cmd("s7", 'SEARCH SUBJECT "beta"')
    assert "* SEARCH 2" in a.cmd("s8", 'SEARCH CC "carol"')
    # ... and that SEARCH made message 2 its cache, kept in the index.
    db = sqlite3.connect(str(maildir(imap).parent / "index.db"), timeout=10)
    (blob,) = db.execute(
        "SELECT hdrsearch FROM messages WHERE uid = 2").fetchone()
    db.close()
    assert blob is not None and b"beta topic" in blob, blob
    # A field the cache does not keep is searched in the file.
    assert "* SEARCH 1" in a.cmd(
        "s9", 'SEARCH HEADER MESSAGE-ID "Alpha.topic@"')


def test_store_opened_by_the_first_command_that_needs_it(imap):
    """LOGIN checks that the store opens, then lets it go: an idle
    logged-in connection holds no index. The next command opens it
    again; when it cannot, the session ends with BYE [UNAVAILABLE] and
    the server goes on."""
    deliver(imap, [message("one")])
    r = Raw(imap)
    r.starttls()
    r.login()
    root = maildir(imap).parent
    os.rename(root / "index.db", root / "index.db.away")
    (root / "index.db").mkdir()
    r.send("s SELECT INBOX\r\n")
    line = r.line()
    assert line.startswith("* BYE [UNAVAILABLE]"), line
    assert r.closed()
    (root / "index.db").rmdir()
    os.rename(root / "index.db.away", root / "index.db")
    a = raw_session(imap)
    assert "* SEARCH 1" in a.cmd("q", "SEARCH ALL")


def test_selected_mailbox_deleted_by_another_session(imap):
    """The selected mailbox deleted elsewhere reads as empty at the next
    command, quietly: no warning in the log for every command after."""
    b = login(imap)
    ok(b.create("Gone"))
    ok(b.append("Gone", None, None, b"Subject: x\r\n\r\nbody\r\n"))
    a = Raw(imap)
    a.starttls()
    a.login()
    assert a.cmd("s", "SELECT Gone")[-1].startswith("s OK")
    ok(b.delete("Gone"))
    lines = a.cmd("n1", "NOOP")
    assert "* 1 EXPUNGE" in lines, lines
    for i in range(3):
        assert a.cmd("n%d" % (i + 2), "NOOP")[-1].startswith("n")
    b.logout()
    assert "imap-delta-failed" not in imap.log_text()
