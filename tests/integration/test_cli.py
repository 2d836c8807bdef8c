"""The administrative CLI contract (DESIGN.md, "Interface contract").

The binary runs directly against a small configuration written into
tmp_path; no server is started. Exit status 0 on success; otherwise
non-zero with exactly one line on standard error.
"""

import sqlite3
import subprocess
import warnings

import pytest

from conftest import CORREO_BIN, TIMEOUT

SAN_MARKERS = ("AddressSanitizer", "runtime error:", "LeakSanitizer")


class Cli:
    def __init__(self, tmp_path):
        self.data_dir = tmp_path / "data"
        self.cfg = tmp_path / "correo.conf"
        # Runs without -c use the embedded default (./var): keep it here.
        self.cwd = tmp_path / "cwd"
        self.cwd.mkdir()
        self.cfg.write_text(
            "[server]\n"
            "hostname = mx.example.test\n"
            "data_dir = %s\n"
            "\n"
            "[smtp]\n"
            "listen = 127.0.0.1:2\n"
            "[submission]\nlisten =\n[submissions]\nlisten =\n"
            "[imap]\nlisten =\n[imaps]\nlisten =\n"
            "[pop3]\nlisten =\n[pop3s]\nlisten =\n" % self.data_dir)

    def run(self, *args, input=None, cfg=True):
        """cfg: True for our config, False for none, or another path."""
        if cfg is True:
            cfg = self.cfg
        argv = [CORREO_BIN] + (["-c", str(cfg)] if cfg else []) + \
            list(args)
        p = subprocess.run(argv, input=input, capture_output=True,
                           text=True, timeout=TIMEOUT * 3, cwd=self.cwd)
        for m in SAN_MARKERS:
            assert m not in p.stderr, "%s: %s" % (args, p.stderr)
        return p

    def ok(self, *args, input=None, cfg=True):
        p = self.run(*args, input=input, cfg=cfg)
        assert p.returncode == 0, "correo %s: rc=%d stderr=%r" % (
            " ".join(args), p.returncode, p.stderr)
        return p

    def fails(self, *args, input=None):
        """Non-zero exit and one line on stderr."""
        p = self.run(*args, input=input)
        assert p.returncode != 0, "correo %s succeeded: %r" % (
            " ".join(args), p.stdout)
        lines = p.stderr.splitlines()
        assert len(lines) == 1 and lines[0].strip(), (
            "correo %s: want one line on stderr, got %r"
            % (" ".join(args), p.stderr))
        assert p.stderr.endswith("\n")
        return p

    def lines(self, *args):
        return self.ok(*args).stdout.splitlines()

    def add_user(self, addr, password="s3cret pass"):
        return self.ok("user", "add", addr, "--password-stdin",
                       input=password + "\n")

    # The password checks read correo.db; that schema is not part of the
    # contract, so they skip rather than fail when it changes.
    def stored_hash(self, addr):
        try:
            db = sqlite3.connect("file:%s?mode=ro"
                                 % (self.data_dir / "correo.db"), uri=True)
            row = db.execute("SELECT hash FROM users WHERE address = ?",
                             (addr,)).fetchone()
            db.close()
        except sqlite3.Error as e:
            pytest.skip("cannot read the user table: %s" % e)
        assert row is not None, "%s not in the user table" % addr
        return row[0]

    def password_matches(self, addr, password):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                import crypt
            except ImportError:
                pytest.skip("no crypt module")
        h = self.stored_hash(addr)
        assert password not in h, "password stored in clear"
        return crypt.crypt(password, h) == h


@pytest.fixture
def cli(tmp_path):
    return Cli(tmp_path)


# -- user -------------------------------------------------------------------

def test_user_add_password_stdin(cli):
    p = cli.add_user("alice@example.test", "first line pw")
    assert "first line pw" not in p.stdout + p.stderr
    assert cli.lines("user", "list") == ["alice@example.test"]
    assert cli.password_matches("alice@example.test", "first line pw")


def test_password_stdin_reads_one_line(cli):
    cli.ok("user", "add", "alice@example.test", "--password-stdin",
           input="only this\nnot this\n")
    assert cli.password_matches("alice@example.test", "only this")
    assert not cli.password_matches("alice@example.test",
                                    "only this\nnot this")


def test_user_add_without_stdin_prints_a_password(cli):
    p = cli.ok("user", "add", "bob@example.test", input="")
    out = p.stdout.strip()
    assert out, "no password printed"
    assert len(out.splitlines()) == 1, out
    pw = out.split()[-1]
    assert len(pw) >= 12, "printed password %r looks weak" % pw
    assert cli.lines("user", "list") == ["bob@example.test"]
    assert cli.password_matches("bob@example.test", pw)
    # Two generated passwords differ.
    p2 = cli.ok("user", "add", "carol@example.test", input="")
    assert p2.stdout.split()[-1] != pw


def test_user_add_duplicate_fails_with_one_line(cli):
    cli.add_user("alice@example.test", "pw one")
    cli.fails("user", "add", "alice@example.test", "--password-stdin",
              input="pw two\n")
    cli.fails("user", "add", "alice@example.test", input="")
    # Domain names are not case-sensitive.
    cli.fails("user", "add", "alice@EXAMPLE.test", "--password-stdin",
              input="pw three\n")
    assert cli.lines("user", "list") == ["alice@example.test"]
    assert cli.password_matches("alice@example.test", "pw one")


def test_user_list(cli):
    assert cli.lines("user", "list") == []
    for a in ("bob@example.test", "alice@example.test", "zed@other.test"):
        cli.add_user(a)
    assert sorted(cli.lines("user", "list")) == [
        "alice@example.test", "bob@example.test", "zed@other.test"]


def test_user_passwd(cli):
    cli.add_user("alice@example.test", "old password")
    old = cli.stored_hash("alice@example.test")
    cli.ok("user", "passwd", "alice@example.test", "--password-stdin",
           input="new password\n")
    assert cli.stored_hash("alice@example.test") != old
    assert cli.password_matches("alice@example.test", "new password")
    assert not cli.password_matches("alice@example.test", "old password")
    # Without --password-stdin a new one is generated and printed.
    p = cli.ok("user", "passwd", "alice@example.test", input="")
    pw = p.stdout.strip().split()[-1]
    assert cli.password_matches("alice@example.test", pw)
    cli.fails("user", "passwd", "nobody@example.test", "--password-stdin",
              input="x\n")
    assert cli.lines("user", "list") == ["alice@example.test"]


def test_user_del(cli):
    cli.add_user("alice@example.test")
    cli.add_user("bob@example.test")
    cli.ok("user", "del", "alice@example.test")
    assert cli.lines("user", "list") == ["bob@example.test"]
    cli.fails("user", "del", "alice@example.test")
    cli.fails("user", "del", "nobody@example.test")
    cli.fails("user", "del", "bob@nodomain.test")
    assert cli.lines("user", "list") == ["bob@example.test"]


def test_user_add_adds_the_domain(cli):
    assert cli.lines("domain", "list") == []
    cli.add_user("alice@new.example")
    assert cli.lines("domain", "list") == ["new.example"]
    cli.add_user("bob@new.example")
    assert cli.lines("domain", "list") == ["new.example"]


BAD_ADDRESSES = [
    "../x@d",
    "a/b@example.test",
    "x@../d",
    "a@exa/mple.test",
    "a@..",
    "..@example.test",
    "@example.test",
    "alice@",
    "no-at-sign",
    "a\nb@example.test",
]


@pytest.mark.parametrize("addr", BAD_ADDRESSES)
def test_user_add_refuses_bad_addresses(cli, addr):
    cli.fails("user", "add", addr, "--password-stdin", input="pw\n")
    cli.fails("user", "add", addr, input="")
    assert cli.lines("user", "list") == []
    # Nothing was made anywhere, inside data_dir or next to it.
    mail = cli.data_dir / "mail"
    made = sorted(str(p) for p in mail.rglob("*")) if mail.is_dir() else []
    assert made == [], made
    outside = sorted(p.name for p in cli.data_dir.parent.iterdir())
    assert outside == sorted(["data", "correo.conf", "cwd"]), outside
    assert list(cli.cwd.iterdir()) == []


# -- domain -------------------------------------------------------------------

def test_domain_add_del_list(cli):
    cli.ok("domain", "add", "one.test")
    cli.ok("domain", "add", "two.test")
    assert sorted(cli.lines("domain", "list")) == ["one.test", "two.test"]
    cli.fails("domain", "add", "one.test")
    cli.ok("domain", "del", "one.test")
    assert cli.lines("domain", "list") == ["two.test"]
    cli.fails("domain", "del", "one.test")


def test_domain_del_with_users_fails(cli):
    cli.add_user("alice@example.test")
    cli.fails("domain", "del", "example.test")
    assert cli.lines("domain", "list") == ["example.test"]
    assert cli.lines("user", "list") == ["alice@example.test"]
    cli.ok("user", "del", "alice@example.test")
    cli.ok("domain", "del", "example.test")
    assert cli.lines("domain", "list") == []


@pytest.mark.parametrize("dom", ["../evil", "a/b", "", "bad domain"])
def test_domain_add_refuses_bad_names(cli, dom):
    cli.fails("domain", "add", dom)
    assert cli.lines("domain", "list") == []


# -- alias --------------------------------------------------------------------

def test_alias_add_del_list(cli):
    cli.add_user("alice@example.test")
    cli.add_user("bob@example.test")
    cli.ok("alias", "add", "info@example.test",
           "alice@example.test,bob@example.test")
    cli.ok("alias", "add", "postmaster@example.test", "alice@example.test")
    lines = cli.lines("alias", "list")
    assert len(lines) == 2, lines
    info = [l for l in lines if l.split()[0] == "info@example.test"]
    assert len(info) == 1, lines
    assert "alice@example.test" in info[0] and "bob@example.test" in info[0]
    cli.fails("alias", "add", "info@example.test", "bob@example.test")
    cli.ok("alias", "del", "info@example.test")
    lines = cli.lines("alias", "list")
    assert [l.split()[0] for l in lines] == ["postmaster@example.test"]
    cli.fails("alias", "del", "info@example.test")
    # An alias keeps its domain in use.
    cli.ok("user", "del", "alice@example.test")
    cli.ok("user", "del", "bob@example.test")
    cli.fails("domain", "del", "example.test")
    cli.ok("alias", "del", "postmaster@example.test")
    cli.ok("domain", "del", "example.test")


def test_alias_of_a_non_local_domain_fails(cli):
    cli.add_user("alice@example.test")
    cli.fails("alias", "add", "x@elsewhere.test", "alice@example.test")
    assert cli.lines("alias", "list") == []


# -- check-config ---------------------------------------------------------------

def test_check_config_ok(cli):
    p = cli.ok("check-config")
    assert p.stderr == "", p.stderr


def test_check_config_unknown_key_names_file_and_line(cli, tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text("[server]\n"
                   "hostname = mx.example.test\n"
                   "data_dir = %s\n"
                   "\n"
                   "[limits]\n"
                   "max_recipients = 10\n"
                   "no_such_key = 1\n" % cli.data_dir)
    p = cli.run("check-config", cfg=bad)
    assert p.returncode != 0
    assert "%s:7" % bad in p.stderr, p.stderr
    assert len(p.stderr.splitlines()) == 1, p.stderr


def test_check_config_unknown_section_names_file_and_line(cli, tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text("[server]\nhostname = mx.example.test\n[typo]\n")
    p = cli.run("check-config", cfg=bad)
    assert p.returncode != 0
    assert "%s:3" % bad in p.stderr, p.stderr


def test_check_config_missing_file(cli, tmp_path):
    p = cli.run("check-config", cfg=tmp_path / "nope.conf")
    assert p.returncode != 0
    assert "nope.conf" in p.stderr


# -- version, help, unknown ------------------------------------------------------

def test_version(cli):
    p = cli.ok("version", cfg=False)
    assert p.stdout.startswith("correo "), p.stdout
    assert any(c.isdigit() for c in p.stdout)


@pytest.mark.parametrize("args", [["--help"], ["user", "--help"],
                                  ["domain", "--help"], ["alias", "--help"]])
def test_help_exits_0(cli, args):
    p = cli.ok(*args, cfg=False)
    assert "usage" in p.stdout.lower(), p.stdout
    assert list(cli.cwd.iterdir()) == [], "help touched the embedded ./var"


def test_unknown_subcommand_fails(cli):
    p = cli.run("frobnicate")
    assert p.returncode != 0
    assert "frobnicate" in p.stderr
    p = cli.run("user", "frobnicate", "a@example.test")
    assert p.returncode != 0
    assert not (cli.data_dir / "correo.db").exists() or \
        cli.lines("user", "list") == []
