"""One error family for everything that crosses a trust boundary.

Every expected failure is a :class:`StrongroomError` carrying a message (what went
wrong, naming the thing), a remedy (what the operator can do) and a process exit
code. The CLI prints ``message`` and ``remedy`` and exits with ``exit_code``; it
never prints a traceback for these. Foreign exceptions are wrapped with
``raise ... from e`` at the boundary where they happen.

``docs/errors.md`` lists every class with its exit code; ``tests/test_errors.py``
checks that the list and the code agree.
"""

from __future__ import annotations


class StrongroomError(Exception):
    """Base of every expected failure."""

    exit_code: int = 20
    default_remedy: str = "See the documentation or run with --help."

    def __init__(self, message: str, remedy: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy if remedy is not None else self.default_remedy

    def __str__(self) -> str:
        return self.message


class VerificationFailed(StrongroomError):
    """The vault does not verify: something is missing, altered or inconsistent."""

    exit_code = 1
    default_remedy = "Read the report; restore affected objects from a replica or backup."


class NotFound(StrongroomError):
    """A vault, record, object or file that was named does not exist."""

    exit_code = 3
    default_remedy = "Check the name or path."


class VaultNotFound(NotFound):
    exit_code = 3
    default_remedy = "Create one with 'strongroom init', or point --vault at an existing vault."


class AuthError(StrongroomError):
    """The passphrase or key file does not open this vault."""

    exit_code = 4
    default_remedy = "Set STRONGROOM_PASSPHRASE or --key-file to this vault's secret."


class Refused(StrongroomError):
    """A write-once rule forbids the operation (retention, legal hold, compliance mode)."""

    exit_code = 5
    default_remedy = "Retained objects cannot be changed; nothing was altered."


class BadInput(StrongroomError):
    """Input we were given cannot be used as it is (missing, unreadable, malformed)."""

    exit_code = 6
    default_remedy = "Check the input named in the message."


class StorageError(StrongroomError):
    """The store could not complete an operation (I/O error, disk full)."""

    exit_code = 7
    default_remedy = "Free space or fix the storage, then retry; nothing acknowledged was lost."


class DiskFull(StorageError):
    exit_code = 7
    default_remedy = "Free space on the vault's disk, then retry; nothing acknowledged was lost."


class CorruptVault(StrongroomError):
    """Vault metadata is unreadable, of a foreign format, or of an unknown version."""

    exit_code = 8
    default_remedy = "Check --vault points at a Strongroom vault; run 'strongroom verify'."


class ObjectExists(StrongroomError):
    """A create-only write found an object of that name with different content."""

    exit_code = 9
    default_remedy = "Objects are never overwritten; this indicates a concurrent writer or a bug."


class Busy(StrongroomError):
    """Another process holds the vault's writer lock."""

    exit_code = 9
    default_remedy = "Wait for the other strongroom process to finish, then retry."


class ClockPaused(StrongroomError):
    """The compliance clock saw a large forward jump; disposal waits for confirmation."""

    exit_code = 10
    default_remedy = (
        "Check the system clock. If the time is right, run 'strongroom clock confirm --reason ...'."
    )


class Incomplete(StrongroomError):
    """A backup stored its snapshot, but some files could not be read or kept changing
    while they were read (each is named in the snapshot and in the output)."""

    exit_code = 11
    default_remedy = (
        "The snapshot is stored. Check the warnings; back up again when the files are quiet."
    )


ALL_ERRORS: tuple[type[StrongroomError], ...] = (
    StrongroomError,
    VerificationFailed,
    NotFound,
    VaultNotFound,
    AuthError,
    Refused,
    BadInput,
    StorageError,
    DiskFull,
    CorruptVault,
    ObjectExists,
    Busy,
    ClockPaused,
    Incomplete,
)
