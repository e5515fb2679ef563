"""The real ``strongroom`` command: outputs, exit codes, bad input, proofs an outsider checks.

Expected failures print one ``error:`` line and a ``hint:`` line, never a traceback, with
distinct exit codes (docs/errors.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Cli


def _ids(out: bytes) -> list[str]:
    return [json.loads(line)["record"] for line in out.decode().splitlines()]


def _strongroom(
    *args: str, env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    """The real command line, without the fixture's --vault/--key-file."""
    return subprocess.run(
        [sys.executable, "-m", "strongroom", *args],
        capture_output=True,
        env=env,
        check=False,
        cwd=cwd,
    )


def _no_traceback(p: subprocess.CompletedProcess[bytes]) -> None:
    assert b"Traceback" not in p.stderr, p.stderr.decode()
    assert p.stderr.decode().startswith("error:"), p.stderr.decode()


def _ledger_size(cli: Cli) -> int:
    names = list((cli.vault / "store" / "objects" / "checkpoints").iterdir())
    return max(int(n.name) for n in names)


def test_ingest_get_round_trip_odd_names(cli: Cli, tmp_path: Path) -> None:
    files = {
        "empty": b"",
        "new\nline name.txt": b"line\n",
        "bin\xe9ary.dat".encode("latin-1").decode("latin-1"): os.urandom(70_000),
        " spaced  ": "ünïcødé ✓".encode(),
        os.fsdecode(b"not-utf8-\xff\xfe.txt"): b"a name that is not UTF-8 (Linux allows it)",
    }
    paths = []
    for name, data in files.items():
        p = tmp_path / name
        p.write_bytes(data)
        paths.append(p)
    ids = _ids(cli("ingest", *paths, "--json").stdout)
    assert len(ids) == len(files)
    for rid, data in zip(ids, files.values(), strict=True):
        out = tmp_path / f"out-{rid}"
        cli("get", rid, "-o", out)
        assert out.read_bytes() == data
        assert cli("get", rid).stdout == data


def test_reingest_prints_existing_id(cli: Cli, tmp_path: Path) -> None:
    f = tmp_path / "m.json"
    f.write_text('{"user": "a", "message": "hi"}')
    first = json.loads(cli("ingest", f, "--json", "--class", "chat").stdout)
    again = json.loads(cli("ingest", f, "--json", "--class", "chat").stdout)
    assert again["record"] == first["record"] and again["duplicate"] is True


def test_bad_json_chat_is_kept_and_flagged(cli: Cli, tmp_path: Path) -> None:
    """Bad input is kept raw and flagged, never dropped."""
    f = tmp_path / "broken.json"
    raw = b'{"user": "x", "message": "cut off'
    f.write_bytes(raw)
    rid = _ids(cli("ingest", f, "--json", "--class", "chat").stdout)[0]
    assert cli("get", rid).stdout == raw
    rows = json.loads(cli("search", "--json").stdout)
    assert [r["flags"] for r in rows if r["id"] == rid] == ["unparsed"]


@pytest.mark.parametrize("case", ["missing", "directory"])
def test_bad_paths_fail_cleanly_and_write_nothing(cli: Cli, tmp_path: Path, case: str) -> None:
    good = tmp_path / "good.txt"
    good.write_text("fine")
    bad = tmp_path / "nope.txt" if case == "missing" else tmp_path
    before = _ledger_size(cli)
    p = cli("ingest", good, bad, check=False)
    assert p.returncode == 6
    _no_traceback(p)
    assert str(bad) in p.stderr.decode()
    assert _ledger_size(cli) == before  # nothing half-written: not even the good file
    cli("verify")


def test_wrong_key_file(cli: Cli, tmp_path: Path) -> None:
    from strongroom.crypto import new_key_file_text

    other = tmp_path / "other.key"
    other.write_text(new_key_file_text())
    p = _strongroom("--vault", str(cli.vault), "--key-file", str(other), "verify", env=cli.env)
    assert p.returncode == 4
    _no_traceback(p)


def test_wrong_passphrase(tmp_path: Path) -> None:
    env = {**os.environ, "STRONGROOM_PASSPHRASE": "right one"}
    vault = str(tmp_path / "v")
    base = [sys.executable, "-m", "strongroom", "--vault", vault]
    subprocess.run([*base, "init"], env=env, check=True, capture_output=True)
    p = subprocess.run(
        [*base, "verify"],
        env={**env, "STRONGROOM_PASSPHRASE": "wrong"},
        capture_output=True,
        check=False,
    )
    assert p.returncode == 4
    _no_traceback(p)
    assert b"passphrase" in p.stderr
    assert b"wrong" not in p.stderr.replace(b"wrong passphrase", b"")  # the secret is not echoed


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b'{"format": "other-tool", "version": 1}',
        b'{"format": "strongroom-vault", "version": 99}',
    ],
)
def test_corrupt_or_foreign_config(cli: Cli, content: bytes) -> None:
    cfg = cli.vault / "store" / "objects" / "vault.json"
    cfg.chmod(0o644)
    cfg.write_bytes(content)
    p = cli("verify", check=False)
    assert p.returncode == 8
    _no_traceback(p)
    assert b"vault.json" in p.stderr


def test_not_a_vault(tmp_path: Path, cli: Cli) -> None:
    p = _strongroom(
        "--vault",
        str(tmp_path / "none"),
        "--key-file",
        str(cli.key_file),
        "search",
        "x",
        env=cli.env,
    )
    assert p.returncode == 3
    _no_traceback(p)


def test_refusals_exit_5(cli: Cli, tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text("a")
    rid = _ids(cli("ingest", f, "--json").stdout)[0]
    p = cli("retain", rid, "--until", "2001-01-01", check=False)
    assert p.returncode == 5
    _no_traceback(p)
    p = cli("mode", "set", "governance", check=False)
    assert p.returncode == 5
    _no_traceback(p)
    cli("verify")


def _rfc9162_root(leaf: bytes, index: int, size: int, path: list[bytes]) -> bytes:
    """An independent RFC 9162 §2.1.3.2 fold, written here from the RFC, not our module."""
    fn, sn, r = index, size - 1, hashlib.sha256(b"\x00" + leaf).digest()
    for p in path:
        if fn % 2 == 1 or fn == sn:
            r = hashlib.sha256(b"\x01" + p + r).digest()
            while fn % 2 == 0 and fn != 0:
                fn //= 2
                sn //= 2
        else:
            r = hashlib.sha256(b"\x01" + r + p).digest()
        fn //= 2
        sn //= 2
    assert sn == 0
    return r


def test_proof_checks_with_independent_code_and_offline(cli: Cli, tmp_path: Path) -> None:
    files = []
    for i in range(40):
        f = tmp_path / f"m{i}.txt"
        f.write_text(f"message {i}")
        files.append(f)
    ids = _ids(cli("ingest", *files, "--json").stdout)
    proof_file = tmp_path / "proof.json"
    cli("proof", ids[17], "-o", proof_file)
    doc = json.loads(proof_file.read_text())
    entry = doc["entry"].encode()
    assert json.loads(entry)["record"] == ids[17]
    root = _rfc9162_root(
        entry,
        doc["leaf_index"],
        doc["tree_size"],
        [bytes.fromhex(h) for h in doc["inclusion_path"]],
    )
    lines = doc["checkpoint"].split("\n")
    assert lines[1] == str(doc["tree_size"])
    assert base64.b64decode(lines[2]) == root
    # offline check: no vault, no key file
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    ok = _strongroom("verify-proof", str(proof_file), env=env, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    doc["entry"] = doc["entry"].replace('"chat"', '"file"').replace(ids[17], ids[16])
    proof_file.write_text(json.dumps(doc))
    bad = _strongroom("verify-proof", str(proof_file), env=env, cwd=tmp_path)
    assert bad.returncode == 1
    _no_traceback(bad)


def test_holds_search_dispose_via_cli(cli: Cli, tmp_path: Path) -> None:
    a = tmp_path / "a.json"
    a.write_text('{"user": "alice@x", "message": "settle the falcon trade"}')
    rid = _ids(cli("ingest", a, "--class", "chat", "--json").stdout)[0]
    rows = json.loads(cli("search", "falcon", "--json").stdout)
    assert [r["id"] for r in rows] == [rid]
    hid = cli("hold", "place", "--query", "falcon", "--reason", "matter 9").stdout.decode().strip()
    holds = json.loads(cli("hold", "list", "--json").stdout)
    assert holds[0]["id"] == hid and holds[0]["records"] == 1
    plan = json.loads(cli("dispose", "--dry-run", "--json").stdout)
    assert plan["records"] == [] and plan["dry_run"] is True
    cli("hold", "release", hid, "--reason", "closed")
    assert json.loads(cli("hold", "list", "--json").stdout) == []
    v = json.loads(cli("verify", "--json").stdout)
    assert v["ok"] is True and v["stats"]["records"] == 1


def test_checkpoint_and_trusted_verify(cli: Cli, tmp_path: Path) -> None:
    note = tmp_path / "cp.txt"
    note.write_bytes(cli("checkpoint").stdout)
    assert note.read_text().startswith("strongroom.vault/")
    f = tmp_path / "x"
    f.write_text("x")
    cli("ingest", f)
    cli("verify", "--trusted", note)


def test_reindex_cli(cli: Cli, tmp_path: Path) -> None:
    f = tmp_path / "x.txt"
    f.write_text("findable words")
    cli("ingest", f)
    for suffix in ("", "-wal", "-shm"):
        Path(str(cli.vault / "state" / "catalog.sqlite") + suffix).unlink(missing_ok=True)
    cli("reindex")
    assert len(json.loads(cli("search", "findable", "--json").stdout)) == 1
    cli("verify")


@pytest.mark.slow
def test_large_sparse_file_streams_with_bounded_memory(cli: Cli, tmp_path: Path) -> None:
    """A record far larger than any buffer we keep: 2 GiB in, peak RSS stays small."""
    big = tmp_path / "big.img"
    with big.open("wb") as f:
        f.truncate(2 << 30)
        f.seek(1 << 30)
        f.write(b"marker in the middle")
    # the ingest process's own peak: its VmHWM, read as it exits. (Not getrusage: a
    # child's ru_maxrss starts at the peak of the process that forked it — here a test
    # session that may already be larger than the limit.)
    script = (
        "import atexit, re, sys\n"
        "def hwm():\n"
        "    m = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read())\n"
        "    sys.stderr.write(f'peak-rss-kib={m.group(1)}\\n')\n"
        "atexit.register(hwm)\n"
        "sys.argv = ['strongroom', *sys.argv[1:]]\n"
        "from strongroom.cli import main\n"
        "main()\n"
    )
    cmd = [sys.executable, "-c", script, "--vault", str(cli.vault), "--key-file",
           str(cli.key_file), "ingest", str(big), "--json"]  # fmt: skip
    p = subprocess.run(cmd, env=cli.env, capture_output=True, timeout=600, check=False)
    assert p.returncode == 0, p.stderr
    rid = _ids(p.stdout)[0]
    peak = int(p.stderr.decode().rsplit("peak-rss-kib=", 1)[1].split()[0])
    assert peak < 300 * 1024, f"peak RSS {peak} KiB"
    out = tmp_path / "back.img"
    cli("get", rid, "-o", out, timeout=600)
    assert out.stat().st_size == 2 << 30
    with out.open("rb") as f:
        f.seek(1 << 30)
        assert f.read(20) == b"marker in the middle"
    out.unlink()
    big.unlink()


def test_reindex_repairs_a_corrupt_catalog(cli: Cli, tmp_path: Path) -> None:
    """The catalog is derived: when it is garbage, the hint 'reindex' must work."""
    f = tmp_path / "x.txt"
    f.write_text("needle in a haystack")
    cli("ingest", f)
    cat = cli.vault / "state" / "catalog.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(f"{cat}{suffix}").unlink(missing_ok=True)
    cat.write_bytes(b"this is not a database" * 100)
    p = cli("search", "needle", check=False)
    assert p.returncode == 8
    _no_traceback(p)
    assert b"reindex" in p.stderr
    cli("reindex")
    assert len(json.loads(cli("search", "needle", "--json").stdout)) == 1
    cli("verify")


def test_tampered_proof_fields_are_refused(cli: Cli, tmp_path: Path) -> None:
    f = tmp_path / "a.txt"
    f.write_text("a")
    g = tmp_path / "b.txt"
    g.write_text("b")
    ids = _ids(cli("ingest", f, g, "--json").stdout)
    proof_file = tmp_path / "p.json"
    cli("proof", ids[0], "-o", proof_file)
    good = json.loads(proof_file.read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    for field, value in (
        ("record", ids[1]),
        ("origin", "strongroom.vault/other"),
        ("root_hash", "00" * 32),
        ("leaf_hash", "11" * 32),
    ):
        bad = dict(good, **{field: value})
        proof_file.write_text(json.dumps(bad))
        p = _strongroom("verify-proof", str(proof_file), env=env)
        assert p.returncode == 1, field
        _no_traceback(p)


def test_unreadable_file_fails_cleanly_and_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    """A file that opens but cannot be read (here /proc/self/mem: EIO at offset 0; as root,
    permission bits would not stop the read): a clear error, no batch half-written."""
    good = tmp_path / "good.txt"
    good.write_text("fine")
    before = _ledger_size(cli)
    p = cli("ingest", good, "/proc/self/mem", check=False)
    assert p.returncode == 6
    _no_traceback(p)
    assert b"mem" in p.stderr
    assert p.stdout == b""  # nothing acknowledged
    assert _ledger_size(cli) == before
    cli("verify")


def test_hostile_file_names_are_shown_as_text(cli: Cli, tmp_path: Path) -> None:
    """A file name is data: Rich markup or terminal escapes in it are not interpreted."""
    f = tmp_path / "[bold red]x[not bold] \x1b[2J.txt"
    f.write_text("payload words")
    cli("ingest", f)
    shown = cli("search", "payload").stdout.decode()
    assert "[bold" in shown and "red]x[not" in shown  # (the table may wrap the cell)
    assert "\x1b" not in shown and "\\x1b" in shown
