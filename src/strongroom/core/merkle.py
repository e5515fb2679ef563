"""RFC 9162 §2.1 Merkle tree hashing, proof generation and proof verification.

The archive's audit log is an append-only Merkle tree in the sense of RFC 9162
(Certificate Transparency v2; identical hashing to RFC 6962): leaves are
``SHA-256(0x00 || entry)``, interior nodes ``SHA-256(0x01 || left || right)``, and
the tree over ``n`` leaves splits at the largest power of two below ``n``. Signed
checkpoints commit to a root; inclusion proofs show a record is in the log and
consistency proofs show a later log extends an earlier one without rewriting it.

Proof *generation* reads hashes from a :class:`HashSource`, which only has to answer
for complete (perfect) subtrees. That is exactly what a tiled log stores (see
:mod:`strongroom.core.tiles`), so proofs for huge trees cost O(log n) lookups.

Proof *verification* is pure and strict: every hash must be exactly 32 bytes, proof
lengths must match the tree shape, and any failure raises :class:`ProofError` with
a message saying what did not match. Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "HashSource",
    "MemoryHashSource",
    "NodeHash",
    "ProofError",
    "TreeBuilder",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "subtree_hash",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE: Final = 32
"""Size in bytes of every hash in the tree (SHA-256)."""

EMPTY_ROOT: Final[bytes] = hashlib.sha256(b"").digest()
"""Root of the empty tree: MTH({}) = SHA-256() (RFC 9162 §2.1.1)."""

_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"


class ProofError(ValueError):
    """A proof, root or hash failed verification or is malformed.

    Raised only by the verifiers; the message names what did not match so that an
    auditor can tell a truncated proof from a wrong root.
    """


# --------------------------------------------------------------------------- hashing


def leaf_hash(entry: bytes) -> bytes:
    """Hash of a leaf: SHA-256(0x00 || entry) (RFC 9162 §2.1.1).

    The 0x00 prefix separates leaves from interior nodes, so a leaf can never be
    passed off as a node (second-preimage protection).
    """
    return hashlib.sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash of an interior node: SHA-256(0x01 || left || right) (RFC 9162 §2.1.1).

    Inputs are not length-checked here (this is the hot path); the verifiers check
    every untrusted hash before it reaches this function.
    """
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly less than ``n`` (``n >= 2``): RFC 9162's ``k``."""
    return 1 << ((n - 1).bit_length() - 1)


def _is_pow2(n: int) -> bool:
    return n > 0 and n & (n - 1) == 0


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """Merkle Tree Hash (MTH) of a list of leaf hashes, iteratively in O(n).

    Hashes pairs level by level and carries an unpaired last node up unchanged,
    which yields exactly the RFC 9162 recursive definition (split at the largest
    power of two below n). Returns :data:`EMPTY_ROOT` for no leaves.
    """
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


# ------------------------------------------------------------------ proof generation


class HashSource(Protocol):
    """Where proof generation gets its hashes from.

    ``node(level, index)`` returns the hash of the complete (perfect) subtree of
    height ``level`` (0 = leaf hashes) covering leaves
    ``[index * 2**level, (index + 1) * 2**level)``. Callers only ask for subtrees
    that are complete in the tree they are working on.
    """

    def node(self, level: int, index: int) -> bytes:
        """Hash of the perfect subtree at ``level``, ``index``."""
        ...


def subtree_hash(src: HashSource, start: int, end: int) -> bytes:
    """MTH of leaves ``[start, end)``, built from the perfect subtrees of ``src``.

    Follows the RFC 9162 recursion but short-cuts every aligned power-of-two range
    to a single ``src.node`` lookup. For ranges starting at a multiple of a large
    enough power of two (every range a proof needs) this costs O(log n) lookups.
    Returns :data:`EMPTY_ROOT` for an empty range.
    """
    if not 0 <= start <= end:
        raise ValueError(f"invalid leaf range [{start}, {end})")
    n = end - start
    if n == 0:
        return EMPTY_ROOT
    if _is_pow2(n) and start % n == 0:
        level = n.bit_length() - 1
        return src.node(level, start >> level)
    k = _split(n)
    return node_hash(subtree_hash(src, start, start + k), subtree_hash(src, start + k, end))


def root(src: HashSource, size: int) -> bytes:
    """Root hash of the tree of the first ``size`` leaves of ``src``."""
    if size < 0:
        raise ValueError(f"tree size must be non-negative, got {size}")
    return subtree_hash(src, 0, size)


def inclusion_proof(src: HashSource, index: int, size: int) -> list[bytes]:
    """Inclusion proof (audit path) for leaf ``index`` in the tree of ``size`` leaves.

    RFC 9162 §2.1.3.1 PATH(m, D[n]), leaf-side sibling first. Raises ValueError if
    ``index`` is not a leaf of the tree (a programmer error: nothing to prove).
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    path: list[bytes] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            path.append(subtree_hash(src, lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree_hash(src, lo, lo + k))
            lo += k
    path.reverse()
    return path


def consistency_proof(src: HashSource, old_size: int, new_size: int) -> list[bytes]:
    """Consistency proof between the trees of ``old_size`` and ``new_size`` leaves.

    RFC 9162 §2.1.4.1 PROOF(m, D[n]) = SUBPROOF(m, D[n], true). The proof is empty
    when the sizes are equal, and also when ``old_size`` is 0: every tree extends the
    empty tree, so there is nothing to prove (``verify_consistency`` agrees).
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    path: list[bytes] = []
    lo, hi, m = 0, new_size, old_size  # m counts old leaves inside [lo, hi)
    whole_old_tree = True  # SUBPROOF's flag b: is [lo, lo + m) the whole old tree?
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            path.append(subtree_hash(src, lo + k, hi))
            hi = lo + k
        else:
            path.append(subtree_hash(src, lo, lo + k))
            lo += k
            m -= k
            whole_old_tree = False
    if not whole_old_tree:
        path.append(subtree_hash(src, lo, hi))
    path.reverse()
    return path


def _inclusion_proof_len(index: int, size: int) -> int:
    """Number of hashes in PATH(index, D[size]), from the tree shape alone."""
    count, lo, hi = 0, 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            hi = lo + k
        else:
            lo += k
        count += 1
    return count


def _consistency_proof_len(old_size: int, new_size: int) -> int:
    """Number of hashes in PROOF(old_size, D[new_size]) for 0 < old_size < new_size."""
    count, lo, hi, m, whole = 0, 0, new_size, old_size, True
    while m != hi - lo:
        k = _split(hi - lo)
        if m <= k:
            hi = lo + k
        else:
            lo += k
            m -= k
            whole = False
        count += 1
    return count if whole else count + 1


# --------------------------------------------------------------------- verification


def _check_hash(what: str, value: object) -> None:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise ProofError(f"{what} must be bytes, got {type(value).__name__}")
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} must be {HASH_SIZE} bytes, got {len(value)}")


def _check_proof(proof: Sequence[bytes]) -> list[bytes]:
    hashes = list(proof)
    for i, h in enumerate(hashes):
        _check_hash(f"proof hash #{i}", h)
    return [bytes(h) for h in hashes]


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """Root implied by an inclusion proof (RFC 9162 §2.1.3.2, without the final compare).

    Raises :class:`ProofError` if the index is outside the tree, any hash is not 32
    bytes, or the proof has the wrong number of hashes for this index and size.
    """
    if size <= 0:
        raise ProofError(f"no leaf can be included in a tree of size {size}")
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    _check_hash("leaf hash", leaf_hash)
    path = _check_proof(proof)
    want = _inclusion_proof_len(index, size)
    if len(path) != want:
        raise ProofError(
            f"inclusion proof for leaf {index} in a tree of size {size} must have "
            f"{want} hashes, got {len(path)}"
        )
    fn, sn, r = index, size - 1, bytes(leaf_hash)
    for p in path:
        if sn == 0:  # unreachable after the length check; kept as the RFC's guard
            raise ProofError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # unreachable after the length check; kept as the RFC's guard
        raise ProofError("inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` with ``root``.

    RFC 9162 §2.1.3.2. Returns None on success, raises :class:`ProofError` otherwise.
    """
    _check_hash("root", root)
    got = root_from_inclusion_proof(leaf_hash, index, size, proof)
    if not hmac.compare_digest(got, bytes(root)):
        raise ProofError(
            f"inclusion proof for leaf {index} in a tree of size {size} does not lead "
            "to the expected root"
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree ``(new_size, new_root)`` extends ``(old_size, old_root)``.

    RFC 9162 §2.1.4.2, plus the edge cases the RFC leaves implicit:

    * equal sizes need an empty proof and equal roots;
    * ``old_size`` 0 needs an empty proof and ``old_root`` equal to
      :data:`EMPTY_ROOT` (any tree extends the empty tree);
    * ``old_size > new_size`` never verifies.

    Returns None on success, raises :class:`ProofError` otherwise.
    """
    _check_hash("old root", old_root)
    _check_hash("new root", new_root)
    path = _check_proof(proof)
    if old_size < 0 or new_size < 0:
        raise ProofError(f"tree sizes must be non-negative, got {old_size} and {new_size}")
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == new_size:
        if path:
            raise ProofError(f"sizes are equal ({old_size}) but the proof is not empty")
        if not hmac.compare_digest(bytes(old_root), bytes(new_root)):
            raise ProofError(f"sizes are equal ({old_size}) but the roots differ")
        if old_size == 0 and bytes(old_root) != EMPTY_ROOT:
            raise ProofError("root of an empty tree must be SHA-256 of the empty string")
        return
    if old_size == 0:
        if path:
            raise ProofError("proof from the empty tree must be empty")
        if bytes(old_root) != EMPTY_ROOT:
            raise ProofError("root of an empty tree must be SHA-256 of the empty string")
        return
    if not path:
        raise ProofError(f"empty consistency proof from size {old_size} to size {new_size}")
    want = _consistency_proof_len(old_size, new_size)
    if len(path) != want:
        raise ProofError(
            f"consistency proof from size {old_size} to size {new_size} must have "
            f"{want} hashes, got {len(path)}"
        )
    if _is_pow2(old_size):
        path.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:  # unreachable after the length check; kept as the RFC's guard
            raise ProofError("consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:  # unreachable after the length check; kept as the RFC's guard
        raise ProofError("consistency proof is shorter than the tree is deep")
    if not hmac.compare_digest(fr, bytes(old_root)):
        raise ProofError(f"consistency proof does not lead to the old root (size {old_size})")
    if not hmac.compare_digest(sr, bytes(new_root)):
        raise ProofError(f"consistency proof does not lead to the new root (size {new_size})")


# ------------------------------------------------------------------- hash sources


class MemoryHashSource:
    """A :class:`HashSource` holding every perfect-subtree hash in memory.

    Builds all levels up front from the leaf hashes (about 2n hashes, 64n bytes);
    meant for tests, verification of small trees and computing tiles.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes]) -> None:
        level = [bytes(h) for h in leaf_hashes]
        for i, h in enumerate(level):
            if len(h) != HASH_SIZE:
                raise ValueError(f"leaf hash #{i} must be {HASH_SIZE} bytes, got {len(h)}")
        levels = [level]
        while len(level) > 1:
            level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
            levels.append(level)
        self._levels = levels

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self._levels[0])

    def node(self, level: int, index: int) -> bytes:
        """Hash of the perfect subtree at ``level``, ``index``; ValueError if incomplete."""
        if level < 0 or index < 0 or level >= len(self._levels):
            raise ValueError(f"no complete subtree at level {level}, index {index}")
        row = self._levels[level]
        if index >= len(row):
            raise ValueError(
                f"no complete subtree at level {level}, index {index} in a tree of size {self.size}"
            )
        return row[index]

    def root(self) -> bytes:
        """Root hash over all leaves."""
        return root(self, self.size)


@dataclass(frozen=True, slots=True)
class NodeHash:
    """The hash of a perfect subtree that has just become complete.

    ``level`` 0 is a leaf hash; ``index`` counts subtrees of that height from the left.
    """

    level: int
    index: int
    digest: bytes


class TreeBuilder:
    """Incremental Merkle tree over appended leaf hashes, keeping only the right edge.

    Holds the hashes of the perfect subtrees in the binary decomposition of the
    current size (a "compact range" of ``[0, size)``): O(log n) memory. Each append
    reports the perfect-subtree hashes it completed, so a writer can persist tiles
    as the log grows without ever re-reading old leaves.
    """

    __slots__ = ("_edge", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._edge: list[bytes] = []

    @classmethod
    def resume(cls, size: int, edge: Sequence[bytes]) -> TreeBuilder:
        """Continue a tree of ``size`` leaves from its right-edge hashes.

        ``edge`` lists the perfect subtrees of the binary decomposition of ``size``,
        left (largest) to right (smallest), as returned by :attr:`edge`.
        """
        if size < 0:
            raise ValueError(f"tree size must be non-negative, got {size}")
        if len(edge) != size.bit_count():
            raise ValueError(
                f"a tree of size {size} has {size.bit_count()} edge hashes, got {len(edge)}"
            )
        for i, h in enumerate(edge):
            if len(h) != HASH_SIZE:
                raise ValueError(f"edge hash #{i} must be {HASH_SIZE} bytes, got {len(h)}")
        builder = cls()
        builder._size = size
        builder._edge = [bytes(h) for h in edge]
        return builder

    @classmethod
    def from_source(cls, src: HashSource, size: int) -> TreeBuilder:
        """Continue a tree of ``size`` leaves, reading its right edge from ``src``."""
        if size < 0:
            raise ValueError(f"tree size must be non-negative, got {size}")
        edge: list[bytes] = []
        start = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                edge.append(src.node(level, start >> level))
                start += 1 << level
        return cls.resume(size, edge)

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    @property
    def edge(self) -> tuple[bytes, ...]:
        """Right-edge hashes, largest subtree first (input for :meth:`resume`)."""
        return tuple(self._edge)

    def append(self, leaf_hash: bytes) -> list[NodeHash]:
        """Append one leaf hash; return the subtrees it completed, leaf first.

        The first item is always the leaf itself (level 0); then one item per level
        at which two siblings merged into a new perfect subtree.
        """
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(leaf_hash)}")
        index = self._size
        h = bytes(leaf_hash)
        done = [NodeHash(0, index, h)]
        level = 0
        while index >> level & 1:
            h = node_hash(self._edge.pop(), h)
            level += 1
            done.append(NodeHash(level, index >> level, h))
        self._edge.append(h)
        self._size += 1
        return done

    def extend(self, leaf_hashes: Iterable[bytes]) -> list[NodeHash]:
        """Append several leaf hashes; return every subtree they completed, in order."""
        done: list[NodeHash] = []
        for h in leaf_hashes:
            done.extend(self.append(h))
        return done

    def root(self) -> bytes:
        """Root hash of the tree so far (:data:`EMPTY_ROOT` when empty)."""
        if not self._edge:
            return EMPTY_ROOT
        h = self._edge[-1]
        for left in reversed(self._edge[:-1]):
            h = node_hash(left, h)
        return h
