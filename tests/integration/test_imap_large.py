"""A large mailbox over IMAP: 10,000 messages written straight into the
Maildir's new/ (as another delivery agent would), then SELECT, FETCH of
every message's envelope, UID SEARCH, STORE on all, EXPUNGE of half, a
second session, and a restart that keeps the UIDs. One test: the mailbox
is built once. No sleeps; every wait is a read with the fixture's
timeout (scaled for sanitized builds)."""

import os
import re

from test_imap import ALICE, Raw, imap  # noqa: F401

N = 10000
NEEDLE = 100            # every 100th message (i % 100 == 7) has "needle"
FETCH_RE = re.compile(r"^\* (\d+) FETCH \(")
UID_RE = re.compile(r"[( ]UID (\d+)")
FLAGS_RE = re.compile(r"[( ]FLAGS \(([^)]*)\)")


def fill(srv):
    """Writes N messages into new/; message i (0-based) gets UID i + 1, as
    the mtimes (arrival order) ascend with i."""
    md = srv.maildir(ALICE)
    for sub in ("cur", "new", "tmp"):
        (md / sub).mkdir(parents=True, exist_ok=True)
    for i in range(N):
        subj = f"needle {i}" if i % NEEDLE == 7 else f"message {i}"
        data = (f"From: Sender {i} <s{i}@remote.test>\r\nTo: <{ALICE}>\r\n"
                f"Subject: {subj}\r\n"
                f"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n"
                f"Message-ID: <m{i}@remote.test>\r\n\r\nbody {i}\r\n"
                ).encode()
        p = md / "new" / f"1700000000.M{i:06d}P1.large,S={len(data)}"
        p.write_bytes(data)
        t = 1700000000 + i
        os.utime(p, (t, t))


def session(srv):
    r = Raw(srv)
    r.starttls()
    r.login()
    return r


def ok(r, tag, line):
    resp = r.cmd(tag, line)
    assert resp[-1].startswith(f"{tag} OK"), resp[-3:]
    return resp


def select(r, tag="sel"):
    resp = ok(r, tag, "SELECT INBOX")
    exists = [int(l.split()[1]) for l in resp if l.endswith(" EXISTS")]
    uidvalidity = [l for l in resp if "[UIDVALIDITY " in l]
    assert len(exists) == 1 and len(uidvalidity) == 1, resp
    return exists[0], uidvalidity[0].split("[UIDVALIDITY ")[1].split("]")[0]


def fetches(resp):
    """(seq, uid, flags) of each FETCH response line."""
    out = []
    for l in resp[:-1]:
        m = FETCH_RE.match(l)
        if m:
            uid, flags = UID_RE.search(l), FLAGS_RE.search(l)
            out.append((int(m.group(1)), uid and int(uid.group(1)),
                        flags and flags.group(1)))
    return out


def search(r, tag, line):
    resp = ok(r, tag, line)
    hits = [l for l in resp if l.startswith("* SEARCH")]
    assert len(hits) == 1, resp[-3:]
    return [int(x) for x in hits[0].split()[2:]]


def test_large_mailbox(imap):
    fill(imap)
    r = session(imap)
    exists, uidvalidity = select(r)
    assert exists == N

    # Every envelope, from the index (summaries made by the load).
    resp = ok(r, "f1", "FETCH 1:* (UID FLAGS ENVELOPE)")
    got = fetches(resp)
    assert len(got) == N
    assert [g[0] for g in got] == list(range(1, N + 1))
    assert [g[1] for g in got] == list(range(1, N + 1))
    assert all(g[2] == "" for g in got)
    assert '"message 0"' in resp[0] and '"s0" "remote.test"' in resp[0]
    assert '"message 9999"' in resp[N - 1]
    assert '"needle 7"' in resp[7]

    # Searches: the header one reads the files, the others the index.
    want = [i + 1 for i in range(N) if i % NEEDLE == 7]
    assert search(r, "s1", "UID SEARCH SUBJECT needle") == want
    assert search(r, "s2", "UID SEARCH UID 9900:* NOT SUBJECT needle") == \
        [u for u in range(9900, N + 1) if u != 9908]
    assert search(r, "s3", "SEARCH SEEN") == []

    # STORE on all: one FETCH each, and the files carry the flag.
    got = fetches(ok(r, "st1", "STORE 1:* +FLAGS (\\Seen)"))
    assert len(got) == N and all(g[2] == "\\Seen" for g in got)
    assert [g[0] for g in got] == list(range(1, N + 1))
    cur = os.listdir(imap.maildir(ALICE) / "cur")
    assert len(cur) == N and all(n.endswith(":2,S") for n in cur)
    assert os.listdir(imap.maildir(ALICE) / "new") == []
    assert len(search(r, "s4", "SEARCH SEEN")) == N

    # Half the messages deleted (two ranges) and expunged.
    got = fetches(ok(r, "st2", "STORE 1:2500,7501:* +FLAGS.SILENT "
                              "(\\Deleted)"))
    assert got == []
    deleted = set(range(1, 2501)) | set(range(7501, N + 1))
    assert sorted(search(r, "s5", "UID SEARCH DELETED")) == sorted(deleted)
    resp = ok(r, "e1", "EXPUNGE")
    gone = [int(l.split()[1]) for l in resp if l.endswith(" EXPUNGE")]
    assert len(gone) == N // 2
    view = list(range(1, N + 1))        # UIDs by sequence number
    for seq in gone:
        del view[seq - 1]
    assert view == list(range(2501, 7501))
    got = fetches(ok(r, "f2", "FETCH 1:* (UID FLAGS)"))
    assert [g[1] for g in got] == view
    assert len(os.listdir(imap.maildir(ALICE) / "cur")) == N // 2

    # Another session sees the result.
    r2 = session(imap)
    exists, _ = select(r2)
    assert exists == N // 2
    assert search(r2, "s6", "UID SEARCH SUBJECT needle") == \
        [u for u in want if 2501 <= u <= 7500]
    ok(r2, "lo", "LOGOUT")
    ok(r, "lo", "LOGOUT")

    # A restart keeps UIDVALIDITY, UIDs and flags.
    imap.restart()
    r3 = session(imap)
    exists, uidvalidity2 = select(r3)
    assert exists == N // 2 and uidvalidity2 == uidvalidity
    got = fetches(ok(r3, "f3", "FETCH 1:* (UID FLAGS)"))
    assert [g[1] for g in got] == view
    assert all(g[2] == "\\Seen" for g in got)
    resp = ok(r3, "st", "STATUS INBOX (MESSAGES UIDNEXT UNSEEN)")
    assert any("MESSAGES 5000" in l and f"UIDNEXT {N + 1}" in l and
               "UNSEEN 0" in l for l in resp), resp
    ok(r3, "lo", "LOGOUT")
