"""Crash safety under load (DESIGN.md, "Durability"): several SMTP clients
(smtplib, port 25, local and aliased-to-remote recipients) and IMAP
clients (imaplib APPEND) run at once while the server is killed with
SIGKILL at random moments, TORTURE_ROUNDS times (default 15). After every
kill, and again after every restart:

- every message that got a 250 or an APPEND OK is in its mailbox (once or
  more: a crash may deliver twice, never lose);
- every file in new/ and cur/ is a whole message: it ends with the last
  line its sender wrote;
- every acknowledged message for a remote recipient is still in the queue
  (`correo queue list`): nothing can leave, [delivery] points nowhere;
- each index.db passes PRAGMA integrity_check (on a copy taken while the
  server is dead, so SQLite's recovery of the WAL is what is checked);
- after the restart, SELECT's EXISTS equals the number of files, and every
  file has its row in the index (and every row its file).

Every fourth round the server is also killed right after it greeted
again, before anything else, and restarted.

TORTURE_SEED picks the random moments (default: fixed, so a failure
replays); `pytest -s` prints what each run did."""

import imaplib
import os
import random
import re
import shutil
import sqlite3
import ssl
import threading
import time
from collections import Counter

from conftest import PASSWORD, SLOW, TIMEOUT, free_port

ALICE = "alice@example.test"
BOB = "bob@example.test"
FWD = "fwd@example.test"            # an alias of a remote address
REMOTE = "far@remote.test"
SENDER = "sender@client.example.net"
ROUNDS = int(os.environ.get("TORTURE_ROUNDS", "15"))
SEED = int(os.environ.get("TORTURE_SEED", "20261202"))
SMTP_THREADS = 3
END = b"END-OF-MESSAGE "            # the last line of every message sent

# (user, IMAP mailbox, Maildir++ folder below the user's root)
MAILBOXES = ((ALICE, "INBOX", ""), (BOB, "INBOX", ""),
             (ALICE, "Sent", ".Sent"), (BOB, "Drafts", ".Drafts"))
# SMTP recipient sets: local only, local and remote, remote only.
RCPT_SETS = ((ALICE,), (BOB,), (ALICE, BOB), (ALICE, FWD), (FWD,))
# APPEND targets, one per IMAP thread.
APPENDS = ((BOB, "INBOX"), (ALICE, "Sent"), (BOB, "Drafts"))
IMAP_THREADS = len(APPENDS)


def tls_ctx():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


def make_message(mid, rng, to):
    """A message whose Message-ID and last line name it; sizes from a few
    hundred octets to about 300 kB so kills land inside long writes."""
    size = rng.choice((300, 1500, 8000, 40000, 300000))
    line = b"x" * 70 + b"\r\n"
    body = line * max(1, size // len(line))
    return (b"From: <%s>\r\nTo: %s\r\nSubject: torture %s\r\n"
            b"Message-ID: <%s@torture.test>\r\n\r\n" % (
                SENDER.encode(), to.encode(), mid.encode(), mid.encode())
            + body + END + mid.encode() + b"\r\n")


def mid_of(data):
    m = re.search(rb"\r\nMessage-ID: <([^>@]+)@torture\.test>\r\n", data)
    return m.group(1).decode() if m else None


def is_whole(data):
    """The file ends with the END line of the message it names."""
    mid = mid_of(data)
    return mid is not None and data.endswith(END + mid.encode() + b"\r\n")


def folder(srv, user, sub):
    root = srv.maildir(user)
    return root / sub if sub else root


def files_of(d):
    out = []
    for sub in ("new", "cur"):
        if (d / sub).is_dir():
            out.extend(p for p in (d / sub).iterdir() if p.is_file())
    return out


class Load:
    """The client threads of one round and what they had acknowledged."""

    def __init__(self, srv, rnd, rng):
        self.srv, self.rnd = srv, rnd
        self.stop = threading.Event()
        self.killing = threading.Event()
        self.lock = threading.Lock()
        self.acked = []         # (mid, {(user, mailbox)}) acknowledged
        self.remote = []        # (mid, queue id) acknowledged for FWD
        self.errors = []
        self.tries = Counter()
        self.seeds = [rng.random() for _ in range(SMTP_THREADS +
                                                  IMAP_THREADS)]
        self.threads = (
            [threading.Thread(target=self._guard, args=(self._smtp, i))
             for i in range(SMTP_THREADS)] +
            [threading.Thread(target=self._guard, args=(self._imap, i))
             for i in range(IMAP_THREADS)])

    def start(self):
        for t in self.threads:
            t.start()

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(TIMEOUT * 3)
        assert not any(t.is_alive() for t in self.threads), "client hung"
        assert not self.errors, "\n".join(self.errors)

    def count(self, what):
        with self.lock:
            self.tries[what] += 1

    def fail(self, what):
        """Records a failure seen while the server was alive: after the
        kill began, errors and refusals are what a crash looks like."""
        if not self.killing.is_set():
            with self.lock:
                self.errors.append(what)

    def _guard(self, fn, i):
        """Runs one client until stopped, connecting again after errors."""
        k = i + (SMTP_THREADS if fn == self._imap else 0)
        rng = random.Random(self.seeds[k])
        while not self.stop.is_set():
            try:
                fn(i, rng)
            except Exception as e:  # noqa: BLE001 -- see fail()
                self.fail("%s client %d: %r" % (fn.__name__, i, e))
                time.sleep(0.01)

    def _smtp(self, i, rng):
        with self.srv.smtp(timeout=TIMEOUT * 2) as s:
            s.ehlo()
            n = 0
            while not self.stop.is_set():
                n += 1
                mid = "s%d-%d-%d-%d" % (self.rnd, i, n,
                                        rng.randrange(1 << 30))
                rcpts = rng.choice(RCPT_SETS)
                msg = make_message(mid, rng, ", ".join(rcpts))
                self.count("smtp")
                code, text = s.mail(SENDER)
                assert code == 250, (code, text)
                for r in rcpts:
                    code, text = s.rcpt(r)
                    assert code == 250, (r, code, text)
                code, text = s.data(msg)
                # Anything but 250 is not a promise: nothing to check.
                if code != 250:
                    self.fail("DATA of %s: %d %r" % (mid, code, text))
                    s.rset()
                    continue
                qid = text.decode().split()[-1]
                boxes = {(r, "INBOX") for r in rcpts if r != FWD}
                with self.lock:
                    self.acked.append((mid, boxes))
                    self.tries["smtp-ok"] += 1
                    if FWD in rcpts:
                        self.remote.append((mid, qid))

    def _imap(self, i, rng):
        user, box = APPENDS[i]
        c = imaplib.IMAP4(self.srv.host, self.srv.p143, timeout=TIMEOUT * 2)
        try:
            c.starttls(ssl_context=tls_ctx())
            c.login(user, PASSWORD)
            n = 0
            while not self.stop.is_set():
                n += 1
                mid = "a%d-%d-%d-%d" % (self.rnd, i, n,
                                        rng.randrange(1 << 30))
                msg = make_message(mid, rng, user)
                self.count("append")
                typ, data = c.append(box, None, None, msg)
                if typ == "OK":
                    with self.lock:
                        self.acked.append((mid, {(user, box)}))
                        self.tries["append-ok"] += 1
                else:
                    self.fail("APPEND of %s: %s %r" % (mid, typ, data))
        finally:
            try:
                c.shutdown()
            except OSError:
                pass


def copy_db(src, dst_dir):
    """index.db with its WAL, as the kill left them; None when missing."""
    if not src.is_file():
        return None
    dst = dst_dir / ("%s-%s" % (src.parent.name, src.name))
    for suffix in ("", "-wal"):
        p = src.parent / (src.name + suffix)
        if p.is_file():
            shutil.copyfile(p, str(dst) + suffix)
    return dst


def integrity(path):
    con = sqlite3.connect(str(path), timeout=TIMEOUT)
    try:
        return con.execute("PRAGMA integrity_check").fetchall()
    finally:
        con.close()


def check_files(srv, want):
    """Files whole, acknowledged ones there; returns the number of message
    files."""
    nfiles = 0
    for user, box, sub in MAILBOXES:
        found = Counter()
        for p in files_of(folder(srv, user, sub)):
            data = p.read_bytes()
            assert is_whole(data), "partial or foreign file %s (%d " \
                "octets): ...%r" % (p, len(data), data[-80:])
            found[mid_of(data)] += 1
            nfiles += 1
        missing = sorted(m for m, boxes in want if (user, box) in boxes
                         and m not in found)
        assert not missing, "%s %s lost %d acknowledged message(s): %s" % (
            user, box, len(missing), missing[:10])
    return nfiles


def check_indexes(srv, tmp):
    """With the server dead: each index.db as the kill left it passes
    integrity_check once SQLite has recovered its WAL."""
    for user in (ALICE, BOB):
        db = copy_db(srv.maildir(user) / "index.db", tmp)
        if db is not None:
            res = integrity(db)
            assert res == [("ok",)], "%s index.db: %s" % (user, res[:10])


def check_queue(srv, remote):
    listed = srv.cli("queue", "list").stdout
    ids = {line.split()[0] for line in listed.splitlines() if line.strip()}
    log = srv.log_text()
    gone = [(mid, qid) for mid, qid in remote if qid not in ids and
            not re.search(r"qid=%s .*(delivered|bounced|event=dsn)"
                          % re.escape(qid), log)]
    assert not gone, "acknowledged remote messages left the queue: %s" % (
        gone[:10])
    return len(ids)


def index_bases(srv, user, box):
    """The Maildir base names the index holds for mailbox."""
    con = sqlite3.connect("file:%s?mode=ro" % (srv.maildir(user) /
                                                "index.db"),
                          uri=True, timeout=TIMEOUT)
    try:
        rows = con.execute(
            "SELECT m.base FROM messages m JOIN mailboxes b "
            "ON m.mailbox_id = b.id WHERE b.name = ?", (box,)).fetchall()
    finally:
        con.close()
    return {r[0] for r in rows}


def check_live(srv):
    """After the restart: SELECT sees exactly the files, each indexed."""
    for user in (ALICE, BOB):
        c = imaplib.IMAP4(srv.host, srv.p143, timeout=TIMEOUT * 2)
        c.starttls(ssl_context=tls_ctx())
        c.login(user, PASSWORD)
        for u, box, sub in MAILBOXES:
            if u != user:
                continue
            typ, data = c.select(box)
            assert typ == "OK", (user, box, data)
            exists = int(data[0])
            d = folder(srv, user, sub)
            files = files_of(d)
            assert exists == len(files), (user, box, exists, len(files))
            assert not [p for p in files if p.parent.name == "new"], \
                "SELECT left files in new/"
            bases = {p.name.split(":")[0] for p in files}
            c.close()
            indexed = index_bases(srv, user, box)
            assert bases == indexed, (user, box, "not indexed",
                                      sorted(bases - indexed)[:5],
                                      "indexed, no file",
                                      sorted(indexed - bases)[:5])
        c.logout()


def restored(srv):
    """Maildir files the journal has put back, over every start so far."""
    return srv.log_text().count("event=journal-restored ")


def test_kill9_under_smtp_and_imap_load(server, tmp_path):
    p143 = free_port()
    srv = server(
        extra={"imap": {"listen": "127.0.0.1:%d" % p143},
               "delivery": {"resolver": "127.0.0.1@9",
                            "relayhost": "127.0.0.1:%d" % free_port(),
                            "retry_min": "1h", "retry_max": "2h"}},
        aliases={FWD: REMOTE}, limits={"max_errors": 1000})
    srv.p143 = p143
    rng = random.Random(SEED)
    acked, remote = [], []
    tries = Counter()
    t0 = time.monotonic()
    nfiles = queued = 0
    for rnd in range(1, ROUNDS + 1):
        load = Load(srv, rnd, rng)
        load.start()
        # A sanitized server is slower; a wider window lets its clients
        # get past TLS and login, without stretching the run fourfold.
        time.sleep(rng.uniform(0.1, 1.5) * min(SLOW, 2))
        load.killing.set()
        srv.kill9()
        load.finish()
        acked += load.acked
        remote += load.remote
        tries.update(load.tries)
        dbs = tmp_path / ("round%d" % rnd)
        dbs.mkdir()
        nfiles = check_files(srv, acked)
        check_indexes(srv, dbs)
        queued = check_queue(srv, remote)
        # A start may add files: the delivery journal puts back what had
        # its record synced when the kill came (acknowledged or not yet:
        # twice is allowed, never lost), one log line each.
        restored0 = restored(srv)
        srv.start()
        if rnd % 4 == 0:
            # Killed again while starting up (orphan cleanup, queue
            # load, first scans): that must be safe too.
            srv.kill9()
            assert check_files(srv, acked) == \
                nfiles + restored(srv) - restored0
            srv.start()
        check_live(srv)
        # The restart lost nothing either.
        n = check_files(srv, acked)
        assert n == nfiles + restored(srv) - restored0, \
            "files before and after the restart: %d, %d (%d restored)" \
            % (nfiles, n, restored(srv) - restored0)
        nfiles = n
    print("\ntorture: %d kill -9 rounds survived in %.1f s; SMTP %d "
          "acknowledged of %d tried (%d with a remote recipient), APPEND "
          "%d OK of %d tried; %d queue entries, %d message files at the end"
          % (ROUNDS, time.monotonic() - t0, tries["smtp-ok"], tries["smtp"],
             len(remote), tries["append-ok"], tries["append"], queued,
             nfiles))
    assert len(acked) > ROUNDS, "the load hardly ran: %d" % len(acked)
