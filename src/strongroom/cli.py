"""The ``strongroom`` command line (Typer + Rich). Thin: parse, call the vault, render.

Expected failures print ``error: <message>`` and ``hint: <remedy>`` on stderr and exit
with the error's code (docs/errors.md); never a traceback. Secrets come only from the
environment (``STRONGROOM_PASSPHRASE``), a key file or an interactive prompt — never
from a command-line argument, which other users could read in the process list.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Column, Table
from rich.text import Text

from strongroom import sample
from strongroom.catalog import Query
from strongroom.core.entries import EntryType
from strongroom.core.retention import Policy, format_time, load_policy, parse_time
from strongroom.crypto import new_key_file_text
from strongroom.errors import (
    BadInput,
    DiskFull,
    Incomplete,
    StorageError,
    StrongroomError,
    VerificationFailed,
)
from strongroom.store.base import RetentionMode
from strongroom.store.s3policy import backup_writer_policy, policy_json
from strongroom.vault import lifecycle, proofs
from strongroom.vault import restore as restore_mod
from strongroom.vault.backup import Backup
from strongroom.vault.ingest import Appender, AppendResult, Item
from strongroom.vault.repair import repair as repair_vault
from strongroom.vault.snapshot import show
from strongroom.vault.vault import Options, Secret, Vault
from strongroom.vault.verify import verify as run_verify

# pretty exceptions would print local variables, which can hold secrets: off
app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Strongroom: a verifiable write-once archive for regulated records.",
)
hold_app = typer.Typer(no_args_is_help=True, help="Legal holds.")
policy_app = typer.Typer(no_args_is_help=True, help="Retention policy.")
clock_app = typer.Typer(no_args_is_help=True, help="The compliance clock.")
key_app = typer.Typer(no_args_is_help=True, help="Keys.")
mode_app = typer.Typer(no_args_is_help=True, help="Retention mode (COMPLIANCE / GOVERNANCE).")
app.add_typer(hold_app, name="hold")
app.add_typer(policy_app, name="policy")
app.add_typer(clock_app, name="clock")
app.add_typer(key_app, name="key")
app.add_typer(mode_app, name="mode")

INTERNAL_ERROR = 70  # EX_SOFTWARE
MAX_PROOF_BYTES = 4 << 20  # a proof is a few KiB; refuse to parse anything huge


def _plain(text: str) -> Text:
    """User-controlled text (file names, reasons) shown as is: never as Rich markup, and
    with control characters (newlines, escape sequences) made visible."""
    return Text(text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text)


out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass(slots=True)
class Ctx:
    vault: str
    key_file: Path | None
    config: Path | None
    actor: str | None
    state_dir: Path | None
    replica: str | None = None
    replica_mode: str = "sync"

    def options(self) -> Options:
        opts = Options(
            policy=load_policy(self.config) if self.config else Policy(),
            state_dir=self.state_dir,
            replica=self.replica,
            replica_mode=self.replica_mode,
        )
        if self.actor:
            opts.actor = self.actor
        return opts

    def secret(self, confirm: bool = False) -> Secret:
        if self.key_file is not None:
            return Secret(key_file=self.key_file)
        pw = os.environ.get("STRONGROOM_PASSPHRASE")
        if pw is None and sys.stdin.isatty():
            pw = typer.prompt("Vault passphrase", hide_input=True, confirmation_prompt=confirm)
        if not pw:
            raise BadInput("no passphrase given", "Set STRONGROOM_PASSPHRASE or pass --key-file.")
        return Secret(passphrase=pw)


def _ctx(ctx: typer.Context) -> Ctx:
    obj = ctx.find_object(Ctx)
    assert obj is not None
    return obj


@contextmanager
def _open(ctx: typer.Context) -> Iterator[Vault]:
    c = _ctx(ctx)
    with Vault.open(c.vault, c.secret(), c.options()) as v:
        yield v


@app.callback()
def _global(
    ctx: typer.Context,
    vault: Annotated[
        str, typer.Option("--vault", envvar="STRONGROOM_VAULT", help="Vault URL or directory.")
    ] = "./var/vault",
    key_file: Annotated[
        Path | None,
        typer.Option("--key-file", envvar="STRONGROOM_KEY_FILE", help="Unlock with a key file."),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", envvar="STRONGROOM_CONFIG", help="Config file (TOML) with [retention]."
        ),
    ] = None,
    actor: Annotated[
        str | None,
        typer.Option(
            "--actor", envvar="STRONGROOM_ACTOR", help="Who acts (recorded in the ledger)."
        ),
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            "--state-dir",
            envvar="STRONGROOM_STATE_DIR",
            help="Local state (catalog, clock, writer lock); required for an S3 vault.",
        ),
    ] = None,
    replica: Annotated[
        str | None,
        typer.Option(
            "--replica",
            envvar="STRONGROOM_REPLICA",
            help="A second store (path or s3://bucket/prefix) holding a copy of every object.",
        ),
    ] = None,
    replica_mode: Annotated[
        str,
        typer.Option(
            "--replica-mode",
            envvar="STRONGROOM_REPLICA_MODE",
            help="sync: acknowledge once both copies are durable (default); async: the "
            "replica catches up in the background.",
        ),
    ] = "sync",
) -> None:
    if replica_mode not in ("sync", "async"):
        raise BadInput(f"unknown replica mode {replica_mode!r}", "Use sync or async.")
    ctx.obj = Ctx(vault, key_file, config, actor, state_dir, replica, replica_mode)


def _emit(data: Any) -> None:
    out.print_json(json.dumps(data, default=str))


# --- init / ingest / get ----------------------------------------------------------------------


@app.command()
def init(
    ctx: typer.Context,
    new_key_file: Annotated[
        Path | None,
        typer.Option(help="Create a new random key file here and use it instead of a passphrase."),
    ] = None,
    governance: Annotated[
        bool, typer.Option(help="GOVERNANCE mode (not 17a-4 grade). Default is COMPLIANCE.")
    ] = False,
) -> None:
    """Create a new, empty vault."""
    c = _ctx(ctx)
    if new_key_file is not None:
        fd = os.open(new_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(new_key_file_text())
            f.flush()
            os.fsync(f.fileno())
        c.key_file = new_key_file
    mode = RetentionMode.GOVERNANCE if governance else RetentionMode.COMPLIANCE
    with Vault.create(c.vault, c.secret(confirm=True), c.options(), mode) as v:
        out.print(f"Created vault {v.config.vault_id} at {c.vault} ({mode} mode)")
        out.print(f"Checkpoint key (give it to your auditors): {v.public_key()}")


def _progress(total: int) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal or total < (8 << 20),
    )


def ingest_paths(
    vault: Vault, paths: list[Path], record_class: str, source: str, on_ack: Any
) -> None:
    files: list[Path] = []
    for p in paths:
        try:
            st = p.stat()
        except OSError as e:
            raise BadInput(f"cannot read {p}: {e.strerror}", "Check the path.") from e
        if p.is_dir():
            raise BadInput(f"{p} is a directory", "Give files; a directory is not a record.")
        if not os.access(p, os.R_OK):
            raise BadInput(f"cannot read {p}: permission denied", "Check the file's permissions.")
        _ = st
        files.append(p)
    total = sum(p.stat().st_size for p in files)
    with _progress(total) as prog, Appender(vault, on_ack=on_ack) as app_:
        task = prog.add_task("ingest", total=total)
        for p in files:
            app_.add(
                Item(
                    open=lambda p=p: p.open("rb"),  # type: ignore[misc]
                    record_class=record_class,
                    source=source,
                    source_id=str(p.resolve()),
                    filename=p.name,
                )
            )
            prog.advance(task, p.stat().st_size)


@app.command()
def ingest(
    ctx: typer.Context,
    files: Annotated[list[Path], typer.Argument(help="Files, each one record.")],
    record_class: Annotated[str, typer.Option("--class", help="Record class.")] = "file",
    source: Annotated[str, typer.Option(help="Source name.")] = "cli",
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per record.")] = False,
) -> None:
    """Append files as records; prints each record id once it is durable."""

    def ack(r: AppendResult) -> None:
        if as_json:
            sys.stdout.write(json.dumps(r.to_json()) + "\n")
        else:
            sys.stdout.write(f"{r.record}{'  (already archived)' if r.duplicate else ''}\n")
        sys.stdout.flush()

    with _open(ctx) as v:
        ingest_paths(v, files, record_class, source, ack)


@app.command()
def get(
    ctx: typer.Context,
    record_id: Annotated[str, typer.Argument(help="Record id.")],
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write here.")] = None,
) -> None:
    """Write a record's raw original, byte-exact (checked against its hash)."""
    with _open(ctx) as v:
        if output is None:
            v.read_record(record_id, sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return
        tmp = output.with_name(f".{output.name}.strongroom-tmp")
        try:
            with tmp.open("xb") as f:
                v.read_record(record_id, f)
            tmp.replace(output)
        finally:
            tmp.unlink(missing_ok=True)


@app.command()
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help='FTS5 query (words, "phrases", AND/OR/NOT).')] = "",
    record_class: Annotated[str, typer.Option("--class", help="Class (glob).")] = "",
    source: Annotated[str, typer.Option(help="Source (glob).")] = "",
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Search the catalog."""
    with _open(ctx) as v:
        q = Query(query, record_class, source)
        rows = v.catalog.search(q, limit=limit)
        v.audit("search", query_key=v.query_key(q.to_json()), results=len(rows))
    if as_json:
        _emit(rows)
        return
    t = Table("record", "class", "received", "size", "name", "flags")
    for r in rows:
        t.add_row(
            r["id"],
            r["class"],
            r["received"][:19],
            str(r["size"]),
            _plain(r["filename"]),
            r["flags"],
        )
    out.print(t)
    out.print(f"{len(rows)} record(s)")


@app.command()
def retain(
    ctx: typer.Context,
    record_id: Annotated[str, typer.Argument()],
    until: Annotated[str, typer.Option(help="New retain-until, YYYY-MM-DD (UTC).")],
) -> None:
    """Extend a record's retention (never shortens)."""
    when = _parse_date(until)
    with _open(ctx) as v:
        new = lifecycle.extend_record(v, record_id, when)
    out.print(f"{record_id} retained until {format_time(new)}")


def _parse_date(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        try:
            return parse_time(text)
        except StrongroomError as e:
            raise BadInput(f"invalid date {text!r}", "Use YYYY-MM-DD.") from e


# --- holds, disposal ---------------------------------------------------------------------------


@hold_app.command("place")
def hold_place(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option(help="Matter, subpoena, ...")],
    record: Annotated[list[str] | None, typer.Option(help="Record id (repeatable).")] = None,
    query: Annotated[str | None, typer.Option(help="Catalog query; catches later records.")] = None,
    record_class: Annotated[str, typer.Option("--class", help="With --query: class glob.")] = "",
) -> None:
    """Place a legal hold on records or on a query."""
    with _open(ctx) as v:
        if record and query is not None:
            raise BadInput("give --record or --query, not both")
        q = Query(query or "", record_class) if query is not None or record_class else None
        hid = lifecycle.place_hold(
            v, records=list(record) if record else None, query=q, reason=reason
        )
    out.print(hid)


@hold_app.command("release")
def hold_release(
    ctx: typer.Context,
    hold_id: Annotated[str, typer.Argument()],
    reason: Annotated[str, typer.Option()],
) -> None:
    """Release a legal hold."""
    with _open(ctx) as v:
        lifecycle.release_hold(v, hold_id, reason)
    out.print(f"released {hold_id}")


@hold_app.command("list")
def hold_list(
    ctx: typer.Context,
    all_: Annotated[bool, typer.Option("--all", help="Include released holds.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List legal holds."""
    with _open(ctx) as v:
        holds = v.catalog.holds(active_only=not all_)
        for h in holds:
            h["records"] = int(
                v.catalog.db.execute(
                    "SELECT count(*) FROM hold_records WHERE hold_id=?", (h["id"],)
                ).fetchone()[0]
            )
        v.audit("hold-list")
    if as_json:
        _emit(holds)
        return
    t = Table("hold", "kind", "records", "placed", "by", "reason", "released")
    for h in holds:
        t.add_row(
            h["id"],
            h["kind"],
            str(h["records"]),
            h["placed"][:19],
            _plain(h["actor"]),
            _plain(h["reason"]),
            "yes" if h["released_serial"] is not None else "",
        )
    out.print(t)


@app.command()
def dispose(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would go.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Delete content whose retention has ended and that no hold covers."""
    with _open(ctx) as v:
        plan = lifecycle.dispose(v, dry_run=dry_run)
    if as_json:
        _emit({**plan.to_json(), "dry_run": dry_run})
        return
    verb = "would dispose of" if dry_run else "disposed of"
    out.print(
        f"{verb} {len(plan.records)} record(s), deleting {len(plan.packs)} object(s); "
        f"{len(plan.held)} expired record(s) held; {len(plan.kept)} object(s) kept for "
        f"live records (as of {plan.now})"
    )


# --- proofs, checkpoints, verify --------------------------------------------------------------


@app.command()
def proof(
    ctx: typer.Context,
    record_id: Annotated[str, typer.Argument()],
    as_json: Annotated[bool, typer.Option("--json")] = False,
    output: Annotated[Path | None, typer.Option("-o", "--output")] = None,
) -> None:
    """Inclusion proof of a record's ledger entry in the latest signed checkpoint."""
    with _open(ctx) as v:
        p = proofs.make_proof(v, record_id)
    text = json.dumps(p, indent=2) + "\n"
    if output is not None:
        output.write_text(text)
    if as_json or output is None:
        sys.stdout.write(text) if as_json else out.print(
            f"record {record_id}: leaf {p['leaf_index']} of {p['tree_size']}, "
            f"{len(p['inclusion_path'])} hashes; verified against the signed checkpoint\n"
            "Use --json or -o FILE for the proof document (docs/formats/proof.md)."
        )


@app.command("verify-proof")
def verify_proof(
    proof_file: Annotated[Path, typer.Argument()],
    public_key: Annotated[
        str | None,
        typer.Option(
            help="The vault's checkpoint key (vkey) you trust; default: the one in the proof."
        ),
    ] = None,
) -> None:
    """Check a proof document offline: no vault, no keys, only the public key."""
    try:
        if proof_file.stat().st_size > MAX_PROOF_BYTES:
            raise BadInput(f"{proof_file} is larger than {MAX_PROOF_BYTES} bytes: not a proof")
        doc = json.loads(proof_file.read_bytes())
    except (OSError, ValueError) as e:
        raise BadInput(f"cannot read proof {proof_file}: {e}") from e
    cp = proofs.check_proof(doc, public_key)
    out.print(
        f"OK: leaf {doc['leaf_index']} is in the tree of size {cp.size} signed by {cp.origin}"
    )
    if public_key is None:
        err.print(
            "note: checked against the public key inside the proof; pass --public-key with the "
            "key the vault owner published ('strongroom public-key') to rule out a forgery"
        )


@app.command()
def checkpoint(ctx: typer.Context) -> None:
    """Print the latest signed checkpoint (give it to an auditor; use with verify --trusted)."""
    with _open(ctx) as v:
        v.audit("checkpoint")
        note = v.ledger.checkpoint_note()
    sys.stdout.write(note.decode())


@app.command("public-key")
def public_key(ctx: typer.Context) -> None:
    """Print the vault's checkpoint verification key (C2SP vkey)."""
    with _open(ctx) as v:
        out.print(v.public_key())


@app.command()
def verify(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    deep: Annotated[bool, typer.Option(help="Also re-hash every record's content.")] = False,
    trusted: Annotated[
        list[Path] | None,
        typer.Option(help="A checkpoint you trust (from 'strongroom checkpoint'); repeatable."),
    ] = None,
) -> None:
    """Prove the vault complete, unaltered and retained; exit 0 only if all holds."""
    notes = [p.read_bytes() for p in trusted or []]
    with _open(ctx) as v:
        total = sum(o["size"] for o in v.catalog.live_packs())
        with _progress(total) as prog:
            task = prog.add_task("verify", total=total)
            report = run_verify(
                v, trusted_notes=notes, deep=deep, progress=lambda n: prog.advance(task, n)
            )
    if as_json:
        _emit(report.to_json())
    else:
        for c in report.checks:
            mark = "[green]ok[/]" if c.ok else "[red]FAILED[/]"
            out.print(f"{mark:>18}  {c.name}")
            for p in c.problems:
                out.print(f"          - {p}")
            if c.records:
                out.print(f"          records affected: {', '.join(sorted(c.records)[:20])}")
            if c.objects:
                out.print(f"          objects affected: {', '.join(sorted(c.objects)[:20])}")
            for n in c.notes:
                out.print(f"          note: {n}")
        s = report.stats
        out.print(
            f"{s['entries']} entries, {s['records']} records, {s['objects']} objects, "
            f"{s['object_bytes'] / 1e6:.1f} MB in {s['seconds']} s "
            f"({s['mb_per_s']} MB/s); mode {s['mode']}"
        )
        out.print("[green]vault verified[/]" if report.ok else "[red]verification FAILED[/]")
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def reindex(ctx: typer.Context) -> None:
    """Rebuild the catalog from the store and the ledger (also repairs a broken catalog)."""
    c = _ctx(ctx)
    opts = c.options()
    opts.fresh_catalog = True
    with Vault.open(c.vault, c.secret(), opts) as v:
        n = v.catalog.indexed
        v.append_entry(EntryType.REINDEX, {"entries": n})
        v.commit()
    out.print(f"catalog rebuilt from {n} ledger entries")


@app.command()
def repair(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable report.")] = False,
) -> None:
    """Restore objects missing or damaged on the primary or the replica from the healthy
    side (creates only; a damaged local copy is moved to quarantine/ first). Recorded
    in the ledger. Exits 1 if something could not be restored."""
    with _open(ctx) as v:
        report = repair_vault(v)
        if as_json:
            _emit(
                {
                    "ok": report.ok,
                    "restored": [
                        {"object": d.name, "side": d.side, "problem": d.problem}
                        for d in report.restored
                    ],
                    "left": [{"object": d.name, "why": why} for d, why in report.left],
                }
            )
        else:
            for d in report.restored:
                out.print(f"restored {_plain(d.name)} on the {d.side} ({d.problem})")
            for d, why in report.left:
                out.print(f"NOT restored {_plain(d.name)}: {why}")
            if report.ok:
                out.print(f"{len(report.restored)} object(s) restored; both copies agree")
    if not report.ok:
        raise VerificationFailed(
            f"{len(report.left)} object(s) could not be restored",
            "Compare the copies with 'strongroom verify' and restore them by hand.",
        )


# --- policy, clock, keys, mode -----------------------------------------------------------------


@policy_app.command("show")
def policy_show(ctx: typer.Context) -> None:
    """Show the retention policy in effect."""
    _emit(_ctx(ctx).options().policy.to_json())


@clock_app.command("show")
def clock_show(ctx: typer.Context) -> None:
    """Show the compliance clock."""
    with _open(ctx) as v:
        r = v.clock()
        v.commit()
    _emit(
        {
            "now": format_time(r.now),
            "trusted": format_time(r.trusted),
            "paused": r.paused,
            "pending_jump": format_time(r.state.pending_jump) if r.state.pending_jump else None,
        }
    )


@clock_app.command("confirm")
def clock_confirm(ctx: typer.Context, reason: Annotated[str, typer.Option()]) -> None:
    """Accept a forward jump of the system clock (recorded in the ledger)."""
    with _open(ctx) as v:
        t = v.confirm_clock(reason)
        v.commit()
    out.print(f"compliance clock confirmed at {format_time(t)}")


@key_app.command("rotate")
def key_rotate(ctx: typer.Context) -> None:
    """New data key for new objects; old objects stay readable."""
    with _open(ctx) as v:
        out.print(f"new data key {v.rotate_key()}")


@mode_app.command("show")
def mode_show(ctx: typer.Context) -> None:
    with _open(ctx) as v:
        out.print(str(v.mode))


@mode_app.command("set")
def mode_set(ctx: typer.Context, mode: Annotated[str, typer.Argument()]) -> None:
    """Switch GOVERNANCE -> COMPLIANCE. COMPLIANCE can never be turned off."""
    try:
        m = RetentionMode(mode.upper())
    except ValueError as e:
        raise BadInput(f"unknown mode {mode!r}", "Use COMPLIANCE or GOVERNANCE.") from e
    with _open(ctx) as v:
        v.set_mode(m)
    out.print(f"mode {m}")


# --- backups ----------------------------------------------------------------------------------


@app.command()
def backup(
    ctx: typer.Context,
    paths: Annotated[list[str] | None, typer.Argument(help="Directories or files.")] = None,
    exclude: Annotated[
        list[str] | None, typer.Option("--exclude", help="Skip paths or names matching (glob).")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A label (repeatable).")] = None,
    source: Annotated[
        str | None, typer.Option(help="Source label (default: the host name).")
    ] = None,
    stdin: Annotated[bool, typer.Option("--stdin", help="Back up standard input.")] = False,
    name: Annotated[str, typer.Option(help="With --stdin: the file name to store it as.")] = "",
    lock_margin: Annotated[
        int,
        typer.Option(
            help="Days added when a pack's retention is set or raised, so that daily backups "
            "extend a reused pack once per this many days.",
        ),
    ] = 10,
    force: Annotated[
        bool, typer.Option("--force", help="Read every file (ignore the file cache).")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Store a snapshot of directories (or of standard input) as one record; prints its id
    once it is durable."""
    if stdin == bool(paths):
        raise BadInput("give PATHs or --stdin (with --name)", "e.g. strongroom backup /srv/data")
    if stdin and not name:
        raise BadInput(
            "--stdin needs --name", "e.g. pg_dump db | strongroom backup --stdin --name db.sql"
        )
    if not 0 <= lock_margin <= 366:
        raise BadInput("--lock-margin is 0 to 366 days")
    with _open(ctx) as v, _progress(1 << 30) as prog:
        task = prog.add_task("backup", total=None)
        job = Backup(
            v,
            source=source,
            excludes=tuple(exclude or ()),
            tags=tuple(tag or ()),
            lock_margin=timedelta(days=lock_margin),
            progress=lambda n: prog.advance(task, n),
            force=force,
        )
        res = job.run_stream(sys.stdin.buffer, name) if stdin else job.run(list(paths or []))
    if as_json:
        sys.stdout.write(json.dumps(res.to_json()) + "\n")
    else:
        sys.stdout.write(res.snapshot + "\n")
        err.print(
            f"{res.files} files, {res.dirs} directories, {res.bytes:,} bytes "
            f"({res.unchanged} files unchanged); {res.new_bytes:,} new bytes stored as "
            f"{res.stored_bytes:,}; retained until {format_time(res.retain_until)}"
        )
    sys.stdout.flush()
    if res.warnings:
        for w in res.warnings:
            err.print(Text("warning: ") + _plain(w))
        raise Incomplete(f"snapshot {res.snapshot} stored with {len(res.warnings)} warning(s)")


@app.command()
def snapshots(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List backup snapshots: what each holds and what it added."""
    with _open(ctx) as v:
        rows = restore_mod.list_snapshots(v, source)
        v.audit("snapshots", results=len(rows))
    if as_json:
        _emit(rows)
        return
    t = Table("time", "source", "paths", "files", "size", "added", "stored", "tags")
    t.columns.insert(0, Column("snapshot", no_wrap=True, min_width=26))
    for r in rows:
        t.add_row(
            r["snapshot"],
            r["time"][:19],
            r["source"],
            _plain(", ".join(r["paths"])),
            str(r["files"]),
            _size(r["bytes"]),
            _size(r["new_bytes"]),
            _size(r["stored_bytes"]),
            ", ".join(r["tags"]),
        )
    out.print(t)
    out.print(f"{len(rows)} snapshot(s)")


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


@app.command("backup-policy")
def backup_policy(
    bucket: Annotated[str, typer.Argument(help="The Object Lock bucket.")],
    principal: Annotated[str, typer.Argument(help="ARN of the backup key's user.")],
    prefix: Annotated[str, typer.Option(help="The vault's path in the bucket.")] = "",
    admin: Annotated[
        str | None, typer.Option(help="ARN of the full credential (needed on Ceph RGW).")
    ] = None,
) -> None:
    """Print the bucket policy that makes PRINCIPAL a write-only backup key: it can put
    locked objects, read and extend their locks; never delete, shorten or unhold
    (docs/backup-credentials.md)."""
    sys.stdout.write(policy_json(backup_writer_policy(bucket, principal, prefix, admin_arn=admin)))
    sys.stdout.write("\n")


@app.command("diff")
def diff_cmd(
    ctx: typer.Context,
    first: Annotated[str, typer.Argument(help="Older snapshot id.")],
    second: Annotated[str, typer.Argument(help="Newer snapshot id (or 'latest').")],
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """What changed between two snapshots: + added, - removed, M content, U metadata."""
    with _open(ctx) as v:
        a = restore_mod.load(v, restore_mod.resolve(v, first))
        b = restore_mod.load(v, restore_mod.resolve(v, second))
        changes = restore_mod.diff(a, b)
        v.audit("diff", records=[first, second], results=len(changes))
    if as_json:
        _emit([{"change": c, "path": show(p)} for c, p in changes])
        return
    for c, p in changes:
        out.print(Text(f"{c} ") + _plain("/" + show(p)))
    counts = {k: sum(1 for c, _ in changes if c == k) for k in "+-MU"}
    err.print(
        f"{counts['+']} added, {counts['-']} removed, {counts['M']} changed, "
        f"{counts['U']} metadata only"
    )


@app.command("find")
def find_cmd(
    ctx: typer.Context,
    pattern: Annotated[str, typer.Argument(help="Glob on the path or the name, e.g. '*.pdf'.")],
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Find files in every snapshot by path or name."""
    with _open(ctx) as v:
        hits = restore_mod.find(v, pattern, source)
        v.audit("find", query_key=v.query_key({"find": pattern}), results=len(hits))
    rows = [
        {
            "snapshot": rec["id"],
            "time": rec["received"],
            "path": "/" + show(n.path),
            "type": n.type,
            "size": n.size,
            "mtime": format_time(datetime.fromtimestamp(n.raw.get("mtime_ns", 0) / 1e9, UTC)),
        }
        for rec, n in hits
    ]
    if as_json:
        _emit(rows)
        return
    t = Table("snapshot", "time", "path", "type", "size", "modified")
    for r in rows:
        t.add_row(
            r["snapshot"],
            r["time"][:19],
            _plain(r["path"]),
            r["type"],
            str(r["size"]),
            r["mtime"][:19],
        )
    out.print(t)
    out.print(f"{len(rows)} match(es)")


@app.command("restore")
def restore_cmd(
    ctx: typer.Context,
    snapshot: Annotated[str, typer.Argument(help="Snapshot id, or 'latest'.")] = "latest",
    paths: Annotated[
        list[str] | None, typer.Argument(help="Only these paths (and what is under them).")
    ] = None,
    target: Annotated[
        Path | None, typer.Option(help="An empty or new directory to restore into.")
    ] = None,
    stdout: Annotated[
        bool, typer.Option("--stdout", help="Write the one file named by PATH to stdout.")
    ] = False,
    at: Annotated[
        str | None, typer.Option(help="With 'latest': the last snapshot at or before this date.")
    ] = None,
    source: Annotated[str | None, typer.Option(help="With 'latest': only this source.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Restore a snapshot, whole or in part: contents, modes, owners, times, links; every
    chunk is checked before it is written."""
    if stdout == (target is not None):
        raise BadInput("give --target DIR or --stdout", "e.g. --target ./restored")
    when = _parse_date(at) if at else None
    with _open(ctx) as v:
        rec = restore_mod.resolve(v, snapshot, source, when)
        if stdout:
            if len(paths or []) != 1:
                raise BadInput("--stdout needs exactly one PATH", "e.g. restore ID db.sql --stdout")
            restore_mod.restore_stream(v, rec, (paths or [""])[0], sys.stdout.buffer)
            sys.stdout.buffer.flush()
            return
        assert target is not None
        with _progress(1 << 30) as prog:
            task = prog.add_task("restore", total=None)
            res = restore_mod.restore(
                v, rec, target, list(paths or []), progress=lambda n: prog.advance(task, n)
            )
    if as_json:
        sys.stdout.write(json.dumps(res.to_json()) + "\n")
    else:
        out.print(
            f"restored snapshot {res.snapshot} into {res.target}: {res.files} files, "
            f"{res.dirs} directories, {res.other} other, {res.bytes:,} bytes"
        )
    for w in res.warnings:
        err.print(Text("warning: ") + _plain(w))
    if res.warnings:
        raise Incomplete(
            f"restored with {len(res.warnings)} warning(s)",
            "Metadata the target file system or this user cannot set was left out.",
        )


@app.command()
def demo(
    ctx: typer.Context,
    records: Annotated[int, typer.Option(help="Chat messages to generate.")] = 200,
) -> None:
    """Create a vault under ./var if needed, ingest a generated sample, verify it."""
    sample.run_demo(_ctx(ctx), records, ingest_paths, out)


def main() -> None:
    try:
        app()
    except StrongroomError as e:
        err.print(f"[red]error:[/] {e.message}", markup=True)
        err.print(f"hint: {e.remedy}")
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted; nothing unacknowledged was kept half-written")
        sys.exit(130)
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            e2: StrongroomError = DiskFull(f"disk full: {e}")
        else:
            e2 = StorageError(f"I/O error: {e}")
        err.print(f"[red]error:[/] {e2.message}")
        err.print(f"hint: {e2.remedy}")
        sys.exit(e2.exit_code)
    except Exception:  # a bug: show it, with its own exit code (1 means "verify failed")
        traceback.print_exc()
        err.print("internal error: this is a bug in strongroom; please report the trace above")
        sys.exit(INTERNAL_ERROR)
