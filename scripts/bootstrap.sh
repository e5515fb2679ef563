#!/usr/bin/env bash
# Make sure this machine has what the project needs, then create .venv with the locked
# dependencies. Used by `make run` and `make test`; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
python_ok() {
    command -v python3 >/dev/null 2>&1 &&
    python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}
python_ok || need_apt+=(python3 python3-venv)
if [ "${1:-}" = "--test" ]; then
    # the disk-full test mounts a small tmpfs (util-linux); git is used by the tests' tooling
    command -v mount >/dev/null 2>&1 || need_apt+=(mount)
    # the S3 tests start a real single-node Ceph RADOS Gateway (tests/s3servers.py)
    for bin in ceph ceph-mon ceph-osd radosgw radosgw-admin monmaptool; do
        command -v "$bin" >/dev/null 2>&1 || { need_apt+=(ceph-mon ceph-osd radosgw ceph-common); break; }
    done
    # the backup tests restore into a real PostgreSQL (tests/pgserver.py); the backup
    # benchmark runs restic and borg side by side (benchmarks/bench_backup.py)
    command -v pg_dump >/dev/null 2>&1 && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 ||
        need_apt+=(postgresql postgresql-client)
    command -v restic >/dev/null 2>&1 || need_apt+=(restic)
    command -v borg >/dev/null 2>&1 || need_apt+=(borgbackup)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
lock=requirements-lock.txt
[ "${1:-}" = "--test" ] && lock=requirements-test-lock.txt
stamp=.venv/.installed-$(sha256sum "$lock" requirements-lock.txt pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check -r "$lock"
    .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e .
    rm -f .venv/.installed-*
    touch "$stamp"
fi
