"""Start and stop a throw-away PostgreSQL cluster on 127.0.0.1 for the test suite.

The server binaries come from Debian's packages (``postgresql-NN``: the highest
``/usr/lib/postgresql/NN/bin`` holding ``initdb``, ``postgres`` and ``pg_ctl``), or from the
directory of an ``initdb`` on PATH elsewhere. The client tools of the same directory
(``psql``, ``pg_dump``, ...) are the ones tests should run: :meth:`PgServer.bin`. Debian's
``/usr/bin/pg_dump`` is a wrapper that picks a version by itself.

PostgreSQL refuses to run as root. When the tests run as root, ``initdb``, ``postgres`` and
``pg_ctl`` run as the ``postgres`` system user (created by the Debian package) through
``setpriv``, which *execs* the server: the process we start is the postmaster itself, so
its pid is known and it is reaped here. That user must be able to reach the cluster
directory; the ``workdir`` is used when it can (and when the unix socket path fits in the
kernel's 107 bytes), otherwise a private ``/tmp/strongroom-pg-*`` directory is created,
linked from ``workdir/cluster`` and removed by :func:`stop`. Pytest's own temporary
directories are ``0700 root``, so under pytest as root it is the latter.

The cluster: ``initdb --no-locale -E UTF8 -N``, superuser ``postgres``; it listens on
127.0.0.1 on a free port only, plus a unix socket in ``CLUSTER/sock``; ``pg_hba.conf``
trusts the unix socket and 127.0.0.1/32 and nothing else; ``fsync``,
``synchronous_commit`` and ``full_page_writes`` are off (nothing here must survive a
crash). Starts in 0.7-1.3 s (median 1.0 s on 2 cores; initdb is ~0.65 s of it, the
postmaster is ready ~0.1 s after it is spawned), stops in 0.03-0.06 s, with or without
clients connected. Logs go to ``workdir/log``.

Readiness = the postmaster writes ``ready`` into ``postmaster.pid`` and 127.0.0.1:PORT
accepts a TCP connection, within 30 s; on a timeout or an early exit, :func:`start` raises
RuntimeError with the log tail (a lost race for the port is retried with another one).
:func:`stop` runs ``pg_ctl stop -m immediate`` only if ``postmaster.pid`` names the
postmaster we started, then checks that it and every process it had forked (recorded by pid
and start time before the signal) are gone; SIGKILL, by pid, for anything left.

CLI (leaves the server running; ``down`` stops what ``DIR/server.json`` names)::

    python -m tests.pgserver up DIR      # prints the PgServer as JSON
    python -m tests.pgserver down DIR
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
SUPERUSER = "postgres"  # the database superuser initdb creates (-U)
OS_USER = "postgres"  # the system user the server runs as when we are root
READY_TIMEOUT = 30.0  # seconds, initdb + start
STOP_TIMEOUT = 10.0  # seconds for the immediate shutdown, then SIGKILL
PORT_ATTEMPTS = 3  # another free port when the one picked was taken meanwhile
SOCKET_PATH_MAX = 107  # sun_path, minus its NUL
INSTALL = "apt-get install -y --no-install-recommends postgresql postgresql-client"
SERVER_BINARIES = ("initdb", "postgres", "pg_ctl")
CLIENT_BINARIES = ("psql", "pg_dump", "pg_dumpall")

# Popen objects of the postmasters this process started, so that stop() reaps them
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class PgServer:
    """A running PostgreSQL cluster: where it listens, who to connect as, its files."""

    host: str  # "127.0.0.1"
    port: int
    socket_dir: Path  # unix socket directory (PGHOST=this also works, as root)
    user: str  # database superuser, trusted without a password
    bindir: Path  # the server's bin directory; its psql/pg_dump match the server
    version: str  # e.g. "15.18"
    pid: int  # the postmaster
    cluster: Path  # owned by the OS user: data/ (PGDATA) and sock/
    workdir: Path  # ours: log/, server.json
    private_cluster: bool  # the cluster is a /tmp directory of its own, removed by stop()

    @property
    def data_dir(self) -> Path:
        return self.cluster / "data"

    def dsn(self, dbname: str = "postgres") -> str:
        """A libpq keyword/value connection string (TCP on 127.0.0.1)."""
        return f"host={self.host} port={self.port} user={self.user} dbname={dbname}"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def env(
        self, dbname: str = "postgres", base: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """``base`` (default: os.environ) without any PG* variable, plus this server's."""
        src = os.environ if base is None else base
        env = {k: v for k, v in src.items() if not k.startswith("PG")}
        env.update(
            PGHOST=self.host,
            PGPORT=str(self.port),
            PGUSER=self.user,
            PGDATABASE=dbname,
            PGSSLMODE="disable",
            PGCONNECT_TIMEOUT="10",
            PGAPPNAME="strongroom-tests",
        )
        return env

    def bin(self, name: str) -> str:
        """Absolute path of a PostgreSQL program of this server's version (psql, pg_dump...)."""
        return str(self.bindir / name)

    def psql(
        self, sql: str, dbname: str = "postgres", input: bytes | None = None, timeout: float = 60
    ) -> str:
        """Run ``sql`` with psql (stop at the first error, unaligned, tuples only); stdout."""
        argv = [self.bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql]
        p = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            env=self.env(dbname),
            timeout=timeout,
            check=False,
        )
        if p.returncode != 0:
            raise RuntimeError(
                f"psql {sql!r} on {dbname} exited {p.returncode}: "
                f"{p.stderr.decode(errors='replace').strip()}"
            )
        return p.stdout.decode()

    def create_database(self, name: str) -> None:
        """An empty database (from template0: nothing a restore could collide with)."""
        self.psql(f"CREATE DATABASE {quote_ident(name)} TEMPLATE template0")

    def drop_database(self, name: str) -> None:
        self.psql(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")


def quote_ident(name: str) -> str:
    """An SQL identifier, double-quoted."""
    if "\0" in name:
        raise ValueError("an identifier cannot contain NUL")
    return '"' + name.replace('"', '""') + '"'


# --------------------------------------------------------------------------- binaries


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.parent.name)) or (0,)


def bindir() -> Path | None:
    """The PostgreSQL bin directory to use: Debian's newest, else the one of PATH's initdb."""
    found = [
        d
        for d in Path("/usr/lib/postgresql").glob("*/bin")
        if all((d / b).is_file() and os.access(d / b, os.X_OK) for b in SERVER_BINARIES)
    ]
    if found:
        return max(found, key=_version_key)
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _os_user() -> pwd.struct_passwd | None:
    """Who the server runs as: the ``postgres`` user when we are root, else ourselves."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    try:
        return pwd.getpwnam(OS_USER)
    except KeyError:
        return None


def unavailable() -> str | None:
    """None if a PostgreSQL server can be started here, else why not (one line)."""
    d = bindir()
    if d is None:
        return f"no PostgreSQL server binaries (initdb, postgres, pg_ctl); {INSTALL}"
    missing = [b for b in (*SERVER_BINARIES, *CLIENT_BINARIES) if not (d / b).is_file()]
    if missing:
        return f"{d} has no {', '.join(missing)}; {INSTALL}"
    if os.geteuid() == 0:
        if _os_user() is None:
            return f"running as root and there is no {OS_USER!r} user to run PostgreSQL as"
        if shutil.which("setpriv") is None:
            return "running as root and 'setpriv' (util-linux) is missing"
    return None


# --------------------------------------------------------------------------- helpers


def _as_user(argv: Sequence[str]) -> list[str]:
    """``argv`` run as the server's OS user: setpriv execs it (same pid), as root only."""
    if os.geteuid() != 0:
        return list(argv)
    return ["setpriv", f"--reuid={OS_USER}", f"--regid={OS_USER}", "--init-groups", "--", *argv]


def _child_env(user: pwd.struct_passwd) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PG", "LC_", "PYTHON")) and k not in ("LANG", "LANGUAGE", "TZ")
    }
    env.update(LC_ALL="C", HOME=user.pw_dir, USER=user.pw_name, LOGNAME=user.pw_name)
    return env


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"--- {path}: (no such file)"
    return f"--- tail of {path}\n" + "\n".join(text.splitlines()[-lines:])


def _conf_str(value: str | Path) -> str:
    return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"


def _run(argv: Sequence[str], env: Mapping[str, str], cwd: Path, log: Path, timeout: float) -> str:
    """Run a short command to completion, its output appended to ``log``; fail on non-zero."""
    try:
        r = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            env=dict(env),
            cwd=cwd,
            timeout=max(1.0, timeout),
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"timeout running {' '.join(argv)}") from e
    out = r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")
    with log.open("a") as f:
        f.write(f"$ {' '.join(argv)}\n{out}[exit {r.returncode}]\n")
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {r.returncode}: {out.strip()[-800:]}")
    return out


def _reachable(cluster: Path, env: Mapping[str, str]) -> bool:
    """The server's OS user can write ``cluster`` (and so traverse every parent)."""
    r = subprocess.run(
        _as_user(["test", "-w", str(cluster), "-a", "-x", str(cluster)]),
        env=dict(env),
        cwd="/",
        capture_output=True,
        check=False,
    )
    return r.returncode == 0


def _make_cluster_dir(workdir: Path, user: pwd.struct_passwd, env: Mapping[str, str]) -> Path:
    """``workdir/cluster`` if the OS user can use it, else a private dir under /tmp."""
    cluster = workdir / "cluster"
    socket_path = cluster / "sock" / ".s.PGSQL.65535"
    if len(os.fsencode(socket_path)) <= SOCKET_PATH_MAX:
        cluster.mkdir(mode=0o700)
        os.chown(cluster, user.pw_uid, user.pw_gid)
        if _reachable(cluster, env):
            return cluster
        cluster.rmdir()
    private = Path(tempfile.mkdtemp(prefix="strongroom-pg-", dir="/tmp"))
    os.chown(private, user.pw_uid, user.pw_gid)
    if not _reachable(private, env):
        shutil.rmtree(private)
        raise RuntimeError(f"user {user.pw_name!r} cannot use {private}")
    cluster.symlink_to(private, target_is_directory=True)
    return private


def _pm_status(data: Path) -> tuple[int | None, str]:
    """(pid, status) from ``postmaster.pid``: line 1 and line 8 ("starting", "ready"...)."""
    try:
        lines = (data / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None, ""
    try:
        pid = int(lines[0])
    except (IndexError, ValueError):
        return None, ""
    return pid, lines[7].strip() if len(lines) > 7 else ""


def _tcp_answers(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- starting

_CONF = """
# --- tests/pgserver.py: a throw-away test cluster
listen_addresses = '{host}'
unix_socket_directories = {sock}
unix_socket_permissions = 0700
max_connections = 40
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
wal_level = minimal
max_wal_senders = 0
logging_collector = off
log_destination = 'stderr'
log_line_prefix = '%m [%p] '
log_min_messages = warning
lc_messages = 'C'
timezone = 'UTC'
log_timezone = 'UTC'
datestyle = 'iso, mdy'
ssl = off
"""

_HBA = """\
# tests/pgserver.py: trust the unix socket and 127.0.0.1 only
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 trust
host    all       all   127.0.0.1/32  trust
"""


def start(workdir: Path, port: int | None = None) -> PgServer:
    """initdb a new cluster and start it on 127.0.0.1:``port`` (a free one if None)."""
    why = unavailable()
    if why is not None:
        raise RuntimeError(f"PostgreSQL is not available: {why}")
    bins, user = bindir(), _os_user()
    assert bins is not None and user is not None
    deadline = time.monotonic() + READY_TIMEOUT
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    _refuse_live(workdir)
    for name in ("cluster", "log", "server.json"):
        old = workdir / name
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)
        elif old.is_symlink() or old.exists():
            old.unlink()
    (workdir / "log").mkdir()
    log = workdir / "log" / "commands.log"
    env = _child_env(user)
    cluster = _make_cluster_dir(workdir, user, env)
    private = cluster != workdir / "cluster"
    try:
        data, sock = cluster / "data", cluster / "sock"
        sock.mkdir(mode=0o700)
        os.chown(sock, user.pw_uid, user.pw_gid)
        initdb = [str(bins / "initdb"), "-D", str(data), "-U", SUPERUSER, "-E", "UTF8"]
        initdb += ["--no-locale", "--no-sync", "--auth=trust", "--no-instructions"]
        _run(_as_user(initdb), env, cluster, log, deadline - time.monotonic())
        with (data / "postgresql.conf").open("a") as f:
            f.write(_CONF.format(host=HOST, sock=_conf_str(sock)))
        (data / "pg_hba.conf").write_text(_HBA)
        said = _run([str(bins / "postgres"), "--version"], env, cluster, log, 10)
        m = re.search(r"\(PostgreSQL\) ([0-9][0-9.]*)", said)
        version = m.group(1) if m else said.strip()
        for attempt in range(PORT_ATTEMPTS):
            chosen = port if port is not None else _free_port()
            pid = _spawn(bins, data, chosen, workdir, cluster, env, deadline, attempt)
            if pid is not None:
                break
            if port is not None:
                raise RuntimeError(f"port {HOST}:{port} is already in use")
        else:  # three lost races in a row
            raise RuntimeError(f"no free port after {PORT_ATTEMPTS} attempts")
    except BaseException:
        if private:
            shutil.rmtree(cluster, ignore_errors=True)
            (workdir / "cluster").unlink(missing_ok=True)
        raise
    server = PgServer(HOST, chosen, sock, SUPERUSER, bins, version, pid, cluster, workdir, private)
    (workdir / "server.json").write_text(json.dumps(_as_json(server), indent=2) + "\n")
    return server


def _spawn(
    bins: Path,
    data: Path,
    port: int,
    workdir: Path,
    cluster: Path,
    env: Mapping[str, str],
    deadline: float,
    attempt: int,
) -> int | None:
    """Start the postmaster, wait until it is ready; None if it lost the port to someone."""
    out = workdir / "log" / "postgres.log"
    argv = _as_user([str(bins / "postgres"), "-D", str(data), "-c", f"port={port}"])
    with out.open("ab") as f:
        f.write(f"--- attempt {attempt + 1}: {' '.join(argv)}\n".encode())
        f.flush()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=f,
            stderr=subprocess.STDOUT,
            cwd=cluster,
            env=dict(env),
            start_new_session=True,  # a Ctrl-C in the terminal does not reach it
        )
    _CHILDREN[proc.pid] = proc
    try:
        while True:
            rc = proc.poll()
            if rc is not None:
                _CHILDREN.pop(proc.pid, None)
                text = out.read_text(errors="replace")
                if "could not bind" in text.rsplit("--- attempt", 1)[-1]:
                    return None
                raise RuntimeError(f"postgres exited with status {rc} while starting\n{_tail(out)}")
            pid, status = _pm_status(data)
            if pid == proc.pid and status == "ready" and _tcp_answers(port):
                return proc.pid
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"timeout ({READY_TIMEOUT:.0f} s) waiting for postgres on {HOST}:{port}\n"
                    f"{_tail(out)}"
                )
            time.sleep(0.01)
    except BaseException:
        _kill_now(proc)
        raise


def _kill_now(proc: subprocess.Popen[bytes]) -> None:
    """Failure path: SIGKILL the postmaster we just started and its children; reap it."""
    children = _children_of(proc.pid)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait(STOP_TIMEOUT)
    _CHILDREN.pop(proc.pid, None)
    for pid, start_time in children:
        if _start_time(pid) == start_time:
            _signal(pid, signal.SIGKILL)


def _as_json(server: PgServer) -> dict[str, object]:
    return {
        "host": server.host,
        "port": server.port,
        "socket_dir": str(server.socket_dir),
        "user": server.user,
        "bindir": str(server.bindir),
        "version": server.version,
        "pid": server.pid,
        "cluster": str(server.cluster),
        "workdir": str(server.workdir),
        "private_cluster": server.private_cluster,
        "dsn": server.dsn(),
    }


def _from_json(d: Mapping[str, object]) -> PgServer:
    return PgServer(
        host=str(d["host"]),
        port=int(str(d["port"])),
        socket_dir=Path(str(d["socket_dir"])),
        user=str(d["user"]),
        bindir=Path(str(d["bindir"])),
        version=str(d["version"]),
        pid=int(str(d["pid"])),
        cluster=Path(str(d["cluster"])),
        workdir=Path(str(d["workdir"])),
        private_cluster=bool(d["private_cluster"]),
    )


# --------------------------------------------------------------------------- stopping


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat fields after the parenthesised comm (field 3 onwards)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()


def _start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot): with the pid, its identity."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields is not None and len(fields) > 19 else None


def _children_of(ppid: int) -> list[tuple[int, int]]:
    """(pid, start time) of the live processes whose parent is ``ppid``."""
    out: list[tuple[int, int]] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None and len(fields) > 19 and fields[1] == str(ppid):
            out.append((int(entry.name), int(fields[19])))
    return out


def _comm(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def _is_postmaster(pid: int, data: Path) -> bool:
    """pid is alive, runs ``postgres`` and its command line names ``data``."""
    if pid <= 1 or _comm(pid) != "postgres" or _gone(pid):
        return False
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return os.fsencode(data) in argv


def _gone(pid: int, start_time: int | None = None) -> bool:
    """The process has exited (and, if it is our child, been reaped); or the pid is reused."""
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return False
        del _CHILDREN[pid]
        return True
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return True
    return start_time is not None and len(fields) > 19 and int(fields[19]) != start_time


def _wait_gone(procs: Iterable[tuple[int, int | None]], timeout: float) -> list[int]:
    """Wait up to ``timeout`` for every (pid, start time) to exit; the pids still alive."""
    end = time.monotonic() + timeout
    alive = list(procs)
    while alive:
        alive = [(p, t) for p, t in alive if not _gone(p, t)]
        if not alive or time.monotonic() > end:
            break
        time.sleep(0.01)
    return [p for p, _ in alive]


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _refuse_live(workdir: Path) -> None:
    try:
        old = _from_json(json.loads((workdir / "server.json").read_text()))
    except (OSError, ValueError, KeyError):
        return
    if _is_postmaster(old.pid, old.data_dir):
        raise RuntimeError(
            f"{workdir} still has a running postgres (pid {old.pid}); "
            f"stop it first: python -m tests.pgserver down {workdir}"
        )


def stop(server: PgServer) -> None:
    """Stop exactly the postmaster :func:`start` started, and the processes it forked.

    ``pg_ctl stop -m immediate`` (SIGQUIT: no checkpoint, the cluster is thrown away) runs
    only if ``postmaster.pid`` names our postmaster; then the postmaster and each process
    it had forked (by pid and start time) must be gone within 10 s, else they get SIGKILL.
    A private cluster directory under /tmp is removed. Returns when all that is done.
    """
    pid, data = server.pid, server.data_dir
    if _is_postmaster(pid, data):
        children = _children_of(pid)
        pm_start = _start_time(pid)
        named, _ = _pm_status(data)
        user = _os_user()
        if named == pid and user is not None:
            pg_ctl = [server.bin("pg_ctl"), "stop", "-D", str(data), "-m", "immediate", "-W"]
            log = server.workdir / "log" / "commands.log"
            try:
                _run(_as_user(pg_ctl), _child_env(user), server.cluster, log, STOP_TIMEOUT)
            except RuntimeError:
                _signal(pid, signal.SIGQUIT)  # what pg_ctl would have sent
        else:
            _signal(pid, signal.SIGQUIT)
        procs: list[tuple[int, int | None]] = [(pid, pm_start), *children]
        alive = _wait_gone(procs, STOP_TIMEOUT)
        for p in alive:
            _signal(p, signal.SIGKILL)
        alive = _wait_gone([(p, t) for p, t in procs if p in alive], STOP_TIMEOUT)
        if alive:
            raise RuntimeError(f"postgres processes {alive} did not exit even after SIGKILL")
    else:
        _gone(pid)  # reap it if it is our exited child
    if server.private_cluster and server.cluster.name.startswith("strongroom-pg-"):
        shutil.rmtree(server.cluster, ignore_errors=True)
        link = server.workdir / "cluster"
        if link.is_symlink():
            link.unlink()


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tests.pgserver", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start a cluster, print it as JSON, leave it running")
    up.add_argument("dir", type=Path)
    up.add_argument("--port", type=int, default=None, help="TCP port (default: a free one)")
    down = sub.add_parser("down", help="stop the cluster DIR/server.json names")
    down.add_argument("dir", type=Path)
    args = ap.parse_args(argv)

    if args.cmd == "up":
        why = unavailable()
        if why is not None:
            sys.stderr.write(f"postgres unavailable: {why}\n")
            return 2
        try:
            server = start(args.dir, port=args.port)
        except RuntimeError as e:
            sys.stderr.write(f"{e}\n")
            return 1
        sys.stdout.write(json.dumps(_as_json(server)) + "\n")
        _CHILDREN.pop(server.pid, None)  # leave it running; nothing here waits for it
        return 0

    workdir = Path(args.dir).resolve()
    try:
        server = _from_json(json.loads((workdir / "server.json").read_text()))
    except (OSError, ValueError, KeyError) as e:
        sys.stderr.write(f"no usable {workdir / 'server.json'}: {e}\n")
        return 0
    live = _is_postmaster(server.pid, server.data_dir)
    if not live:
        sys.stderr.write(f"pid {server.pid} is not the postgres of {workdir}; left alone\n")
    stop(server)  # also removes a private cluster directory
    if live:
        sys.stdout.write(f"stopped postgres ({server.pid})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
