"""IMAP mailbox commands as transcripts: LIST/LSUB patterns and extended
options, modified UTF-7 names, SELECT/EXAMINE responses, CLOSE's silent
expunge, STATUS items, QRESYNC's VANISHED (EARLIER), and the untagged
updates NOOP brings. Flags and expunges are made by renaming and removing
Maildir files, as another Maildir reader would, so these tests need no
STORE or EXPUNGE."""

import re
import time

from test_imap import ALICE, Raw, deliver, imap, message  # noqa: F401


def session(srv):
    r = Raw(srv)
    r.starttls()
    r.login()
    return r


def tagged(resp, tag, status="OK"):
    assert resp[-1].startswith(f"{tag} {status}"), resp
    return resp


def lists(resp, kind="LIST"):
    return [l for l in resp if l.startswith(f"* {kind} ")]


def names(resp, kind="LIST"):
    out = []
    for l in lists(resp, kind):
        m = re.search(r'"/" "?([^"]*)"?$', l)
        out.append(m.group(1))
    return out


def cur_files(srv):
    return sorted((srv.maildir(ALICE) / "cur").iterdir(),
                  key=lambda p: (p.stat().st_mtime_ns, p.name))


def flag_file(path, letters):
    """Sets Maildir flags on a message file (as mutt would)."""
    base = path.name.split(":2,")[0]
    path.rename(path.with_name(f"{base}:2,{letters}"))


def test_list_patterns_percent_star_and_reference(imap):
    r = session(imap)
    for name in ("a/b/c", "a/x", "ab"):
        tagged(r.cmd("c", f"CREATE {name}"), "c")
    resp = tagged(r.cmd("l1", 'LIST "" "*"'), "l1")
    got = names(resp)
    assert got[0] == "INBOX", resp
    assert {"a", "a/b", "a/b/c", "a/x", "ab"} <= set(got)
    resp = tagged(r.cmd("l2", 'LIST "" "%"'), "l2")
    got = names(resp)
    assert "a" in got and "ab" in got and "a/b" not in got, resp
    line = [l for l in lists(resp) if l.endswith('"a"')][0]
    assert "\\HasChildren" in line
    line = [l for l in lists(resp) if l.endswith('"ab"')][0]
    assert "\\HasNoChildren" in line
    resp = tagged(r.cmd("l3", 'LIST "" "a/%"'), "l3")
    assert names(resp) == ["a/b", "a/x"], resp
    resp = tagged(r.cmd("l4", 'LIST "a/" "%"'), "l4")
    assert names(resp) == ["a/b", "a/x"], resp
    resp = tagged(r.cmd("l5", 'LIST "" "a*"'), "l5")
    assert names(resp) == ["a", "a/b", "a/b/c", "a/x", "ab"], resp
    resp = tagged(r.cmd("l6", 'LIST "" "inbox"'), "l6")
    assert names(resp) == ["INBOX"], resp
    resp = tagged(r.cmd("l7", 'LIST "" ""'), "l7")
    assert resp[0] == '* LIST (\\Noselect) "/" ""', resp
    resp = tagged(r.cmd("l8", 'LIST "" "nothing%here"'), "l8")
    assert resp == ["l8 OK LIST completed"]


def test_list_shows_deleted_parent_as_noselect(imap):
    r = session(imap)
    tagged(r.cmd("c", "CREATE p/q"), "c")
    tagged(r.cmd("d", "DELETE p"), "d")
    resp = tagged(r.cmd("l", 'LIST "" "%"'), "l")
    line = [l for l in lists(resp) if l.endswith('"p"')]
    assert line and "\\Noselect" in line[0] and "\\HasChildren" in line[0]
    resp = tagged(r.cmd("m", 'LIST "" "%" RETURN (CHILDREN)'), "m")
    line = [l for l in lists(resp) if l.endswith('"p"')]
    assert line and "\\NonExistent" in line[0], resp
    resp = r.cmd("s", "SELECT p")
    assert resp[-1].startswith("s NO [NONEXISTENT]"), resp
    tagged(r.cmd("e", "DELETE p"), "e", "NO [NONEXISTENT]")


def test_hostile_pattern_is_fast(imap):
    r = session(imap)
    tagged(r.cmd("c", "CREATE " + "a" * 200), "c")
    # exponential for a backtracking matcher: no "b" to end on
    for i, pattern in enumerate(("*a" * 150 + "%b", "*a%" * 15000 + "b")):
        t0 = time.monotonic()
        resp = r.cmd(f"l{i}", f'LIST "" "{pattern}"')
        assert resp == [f"l{i} OK LIST completed"], resp
        assert time.monotonic() - t0 < 3


def test_modified_utf7_names_round_trip(imap):
    r = session(imap)
    tagged(r.cmd("c", 'CREATE "&ZeVnLIqe-/caf&AOk-"'), "c")
    resp = tagged(r.cmd("l", 'LIST "" "&ZeVnLIqe-*"'), "l")
    assert names(resp) == ["&ZeVnLIqe-", "&ZeVnLIqe-/caf&AOk-"], resp
    assert (imap.maildir(ALICE) / ".日本語.café").is_dir()
    tagged(r.cmd("a", 'CREATE "R&-D"'), "a")
    assert "R&-D" in names(r.cmd("b", 'LIST "" "R*"'))
    assert (imap.maildir(ALICE) / ".R&D").is_dir()
    tagged(r.cmd("x", 'CREATE "&Jjo"'), "x", "BAD")
    tagged(r.cmd("y", 'SELECT "&ZeVnLIqe-/caf&AOk-"'), "y")
    # UTF-8 once enabled (RFC 6855)
    r2 = session(imap)
    tagged(r2.cmd("e", "ENABLE UTF8=ACCEPT"), "e")
    resp = tagged(r2.cmd("l", 'LIST "" "日本語*"'), "l")
    assert names(resp) == ["日本語", "日本語/café"], resp
    resp = tagged(r2.cmd("s", 'STATUS "日本語/café" (MESSAGES)'), "s")
    assert resp[0] == '* STATUS "日本語/café" (MESSAGES 0)', resp


def test_select_examine_responses_and_closed(imap):
    deliver(imap, [message("one"), message("two")])
    r = session(imap)
    resp = tagged(r.cmd("s", "SELECT INBOX"), "s", "OK [READ-WRITE]")
    assert "* 2 EXISTS" in resp and "* 0 RECENT" in resp, resp
    assert "* OK [UNSEEN 1] First unseen" in resp
    assert any(l.startswith("* FLAGS (\\Answered") for l in resp)
    assert any("[PERMANENTFLAGS (" in l and "\\*)]" in l for l in resp)
    assert any(l.startswith("* OK [UIDNEXT 3]") for l in resp)
    assert any(l.startswith("* OK [HIGHESTMODSEQ ") for l in resp)
    resp = tagged(r.cmd("e", "EXAMINE INBOX"), "e", "OK [READ-ONLY]")
    assert resp[0].startswith("* OK [CLOSED]"), resp
    assert "* OK [PERMANENTFLAGS ()] Read-only mailbox" in resp
    resp = r.cmd("n", "SELECT Nope")
    assert resp[0].startswith("* OK [CLOSED]"), resp
    tagged(resp, "n", "NO [NONEXISTENT]")
    # no longer selected
    tagged(r.cmd("c", "CLOSE"), "c", "BAD")
    tagged(r.cmd("u", "UNSELECT"), "u", "BAD")
    tagged(r.cmd("o", "NOOP"), "o")


def test_rev2_select_has_no_recent_and_a_list(imap):
    r = session(imap)
    tagged(r.cmd("e", "ENABLE IMAP4rev2"), "e")
    resp = tagged(r.cmd("s", "SELECT inbox"), "s")
    assert not any("RECENT" in l for l in resp), resp
    assert '* LIST () "/" "INBOX"' in resp


def test_close_expunges_silently_examine_does_not(imap):
    deliver(imap, [message("a"), message("b"), message("c")])
    r = session(imap)
    tagged(r.cmd("s", "EXAMINE INBOX"), "s")
    flag_file(cur_files(imap)[0], "T")
    resp = tagged(r.cmd("c", "CLOSE"), "c")
    assert resp == ["c OK CLOSE completed"]
    assert len(cur_files(imap)) == 3
    tagged(r.cmd("s2", "SELECT INBOX"), "s2")
    resp = tagged(r.cmd("c2", "CLOSE"), "c2")
    assert resp == ["c2 OK CLOSE completed"], resp
    assert len(cur_files(imap)) == 2
    resp = tagged(r.cmd("s3", "SELECT INBOX"), "s3")
    assert "* 2 EXISTS" in resp
    resp = tagged(r.cmd("u", "UNSELECT"), "u")
    assert resp == ["u OK UNSELECT completed"]


def test_status_items(imap):
    deliver(imap, [message("a"), message("b", body="x" * 100 + "\r\n")])
    r = session(imap)
    size = sum(p.stat().st_size for p in imap.maildir_files(ALICE))
    resp = tagged(r.cmd("s", "STATUS INBOX (MESSAGES RECENT UIDNEXT "
                        "UIDVALIDITY UNSEEN DELETED SIZE HIGHESTMODSEQ "
                        "APPENDLIMIT)"), "s")
    m = re.match(r"\* STATUS \"INBOX\" \((.*)\)$", resp[0])
    assert m, resp
    items = dict(zip(*[iter(m.group(1).split())] * 2))
    assert items["MESSAGES"] == "2" and items["RECENT"] == "0"
    assert items["UIDNEXT"] == "3" and items["UNSEEN"] == "2"
    assert items["DELETED"] == "0" and int(items["UIDVALIDITY"]) > 0
    assert int(items["SIZE"]) == size
    assert int(items["HIGHESTMODSEQ"]) > 0 and int(items["APPENDLIMIT"]) > 0
    tagged(r.cmd("n", "STATUS Nope (MESSAGES)"), "n", "NO [NONEXISTENT]")
    # STATUS of the selected mailbox is fine
    tagged(r.cmd("x", "SELECT INBOX"), "x")
    resp = tagged(r.cmd("y", "STATUS INBOX (MESSAGES)"), "y")
    assert resp[0] == '* STATUS "INBOX" (MESSAGES 2)'


def test_create_delete_rename_errors_and_special_use(imap):
    r = session(imap)
    tagged(r.cmd("a", "CREATE Notes (USE (\\Drafts))"), "a")
    resp = tagged(r.cmd("b", 'LIST "" Notes'), "b")
    assert "\\Drafts" in lists(resp)[0], resp
    tagged(r.cmd("c", "CREATE Every (USE (\\All))"), "c", "NO [USEATTR]")
    tagged(r.cmd("d", "CREATE inbox"), "d", "NO [ALREADYEXISTS]")
    tagged(r.cmd("e", "DELETE INBOX"), "e", "NO [CANNOT]")
    tagged(r.cmd("f", "DELETE Nope"), "f", "NO [NONEXISTENT]")
    tagged(r.cmd("g", "RENAME Nope Other"), "g", "NO [NONEXISTENT]")
    tagged(r.cmd("h", "RENAME Sent Drafts"), "h", "NO [ALREADYEXISTS]")
    tagged(r.cmd("i", "CREATE Trailing/"), "i")
    assert names(r.cmd("j", 'LIST "" Trailing')) == ["Trailing"]
    tagged(r.cmd("k", 'CREATE ".hidden"'), "k", "NO [CANNOT]")
    # deleting the selected mailbox is allowed
    tagged(r.cmd("l", "SELECT Notes"), "l")
    tagged(r.cmd("m", "DELETE Notes"), "m")
    tagged(r.cmd("n", "NOOP"), "n")


def test_rename_keeps_the_selected_view(imap):
    r = session(imap)
    tagged(r.cmd("a", "CREATE Old"), "a")
    tagged(r.cmd("b", "SELECT Old"), "b")
    tagged(r.cmd("c", "RENAME Old New/Name"), "c")
    assert names(r.cmd("d", 'LIST "" "New*"')) == ["New", "New/Name"]
    resp = tagged(r.cmd("e", "NOOP"), "e")
    assert resp == ["e OK NOOP completed"], resp


def test_subscriptions_lsub_and_extended_list(imap):
    r = session(imap)
    tagged(r.cmd("a", "SUBSCRIBE Sent"), "a")
    tagged(r.cmd("b", 'SUBSCRIBE "Foo/Bar"'), "b")
    resp = tagged(r.cmd("c", 'LSUB "" "*"'), "c")
    # the default mailboxes start subscribed
    assert {"Sent", "Foo/Bar"} <= set(names(resp, "LSUB")), resp
    resp = tagged(r.cmd("d", 'LSUB "" "%"'), "d")
    got = names(resp, "LSUB")
    assert "Foo" in got and "Foo/Bar" not in got, resp
    assert '* LSUB (\\Noselect) "/" "Foo"' in resp
    resp = tagged(r.cmd("e", 'LIST (SUBSCRIBED) "" "*"'), "e")
    assert "Foo/Bar" in names(resp) and "Foo" not in names(resp), resp
    bar = [l for l in resp if l.endswith('"Foo/Bar"')][0]
    assert "\\NonExistent" in bar and "\\Subscribed" in bar
    resp = tagged(r.cmd("f", 'LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"'), "f")
    foo = [l for l in resp if '"Foo"' in l]
    assert foo and foo[0].endswith('"Foo" ("CHILDINFO" ("SUBSCRIBED"))'), resp
    resp = tagged(r.cmd("g", 'LIST "" "*" RETURN (SUBSCRIBED)'), "g")
    sent = [l for l in resp if l.endswith('"Sent"')][0]
    assert "\\Subscribed" in sent and "\\Sent" in sent
    assert not any("Foo" in l for l in resp), resp
    tagged(r.cmd("h", "UNSUBSCRIBE Sent"), "h")
    assert names(r.cmd("i", 'LSUB "" "Sent"'), "LSUB") == []
    # selection options combine
    resp = tagged(r.cmd("j", 'LIST (SUBSCRIBED SPECIAL-USE) "" "*"'), "j")
    got = names(resp)
    assert "Sent" not in got and "Foo/Bar" not in got and "INBOX" not in got
    assert "Trash" in got, resp


def test_list_status_return(imap):
    deliver(imap, [message("a")])
    r = session(imap)
    resp = tagged(r.cmd("a", 'LIST "" "INBOX" RETURN (STATUS (MESSAGES '
                        'UNSEEN))'), "a")
    assert resp[0].startswith("* LIST (") and resp[0].endswith('"INBOX"')
    assert resp[1] == '* STATUS "INBOX" (MESSAGES 1 UNSEEN 1)', resp


def test_noop_reports_flags_new_mail_and_expunges(imap):
    deliver(imap, [message("a"), message("b")])
    r = session(imap)
    tagged(r.cmd("s", "SELECT INBOX"), "s")
    files = cur_files(imap)
    flag_file(files[1], "F")
    resp = tagged(r.cmd("n1", "NOOP"), "n1")
    assert resp[0] == "* 2 FETCH (UID 2 FLAGS (\\Flagged))", resp
    deliver(imap, [message("c")])
    resp = tagged(r.cmd("n2", "CHECK"), "n2")
    assert resp[0] == "* 3 EXISTS", resp
    files[0].unlink()
    resp = tagged(r.cmd("n3", "NOOP"), "n3")
    assert resp[0] == "* 1 EXPUNGE", resp
    assert tagged(r.cmd("n4", "NOOP"), "n4") == ["n4 OK NOOP completed"]


def test_qresync_vanished_earlier_and_known_uids(imap):
    deliver(imap, [message(s) for s in "abcd"])
    r = session(imap)
    tagged(r.cmd("e", "ENABLE QRESYNC"), "e")
    resp = tagged(r.cmd("s", "SELECT INBOX"), "s")
    text = " ".join(resp)
    uv = int(re.search(r"UIDVALIDITY (\d+)", text).group(1))
    hms = int(re.search(r"HIGHESTMODSEQ (\d+)", text).group(1))
    files = cur_files(imap)
    flag_file(files[0], "T")
    flag_file(files[2], "ST")
    tagged(r.cmd("c", "CLOSE"), "c")
    resp = tagged(r.cmd("q1", f"SELECT INBOX (QRESYNC ({uv} {hms}))"), "q1")
    assert "* VANISHED (EARLIER) 1,3" in resp, resp
    resp = tagged(r.cmd("q2", f"SELECT INBOX (QRESYNC ({uv} {hms} 2:4))"),
                  "q2")
    assert resp[0].startswith("* OK [CLOSED]"), resp
    assert "* VANISHED (EARLIER) 3" in resp, resp
    resp = tagged(r.cmd("q3", f"SELECT INBOX (QRESYNC ({uv + 1} {hms}))"),
                  "q3")
    assert not any("VANISHED" in l for l in resp), resp
    # an expunge seen by NOOP is a VANISHED once QRESYNC is on
    flag_file(cur_files(imap)[0], "F")
    cur_files(imap)[1].unlink()
    resp = tagged(r.cmd("n", "NOOP"), "n")
    assert "* VANISHED 4" in resp, resp
    assert any(re.match(r"\* 1 FETCH \(UID 2 FLAGS \(\\Flagged\) "
                        r"MODSEQ \(\d+\)\)", l) for l in resp), resp
    r2 = session(imap)
    tagged(r2.cmd("s", f"SELECT INBOX (QRESYNC ({uv} {hms}))"), "s", "BAD")
