"""Hash chain, Merkle trees and signatures: the cryptography of the audit log.

* **Chain.** Record *n* has hash ``H(n) = SHA-256(H(n-1) || n as 8 bytes || data)``
  where ``data`` is the record's canonical JSON. ``H(0)`` is derived from the
  log's id, so records cannot be spliced in from another log.
* **Merkle trees** (RFC 6962 §2.1) over the record hashes of a range: leaves are
  ``SHA-256(0x00 || H(n))``, nodes ``SHA-256(0x01 || left || right)``. An
  inclusion proof is the audit path from one leaf to the root.
* **Checkpoints** name a log, a range, its Merkle root and the hash of its last
  record, and are signed with Ed25519. Verifiers need only the public key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from langchain_secure.audit._ranges import merkle_root
from langchain_secure.audit.canonical import canonical_json

__all__ = [
    "Checkpoint",
    "InclusionProof",
    "chain_hash",
    "genesis_hash",
    "inclusion_path",
    "key_id",
    "load_private_key",
    "load_public_key",
    "merkle_root",
    "root_from_path",
    "write_keypair",
]

_GENESIS_TAG = b"langchain-secure/audit/v1\x00"


def genesis_hash(log_id: str) -> bytes:
    """``H(0)``: the hash the first record of log ``log_id`` chains from."""
    return hashlib.sha256(_GENESIS_TAG + log_id.encode("utf-8")).digest()


def chain_hash(prev: bytes, seq: int, data: bytes) -> bytes:
    """``H(seq) = SHA-256(prev || seq || data)``."""
    return hashlib.sha256(prev + seq.to_bytes(8, "big") + data).digest()


def _leaf(record_hash: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + record_hash).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


def _subtree(leaves: Sequence[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node(_subtree(leaves[:k]), _subtree(leaves[k:]))


def inclusion_path(hashes: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path proving leaf ``index`` is in the tree over ``hashes``."""
    if not 0 <= index < len(hashes):
        raise IndexError(index)
    return _path([_leaf(h) for h in hashes], index)


def _path(leaves: Sequence[bytes], index: int) -> list[bytes]:
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*_path(leaves[:k], index), _subtree(leaves[k:])]
    return [*_path(leaves[k:], index - k), _subtree(leaves[:k])]


def root_from_path(record_hash: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes:
    """Recompute a root from one leaf and its audit path (RFC 9162 §2.1.3.2)."""
    if not 0 <= index < size:
        raise ValueError("leaf index outside the tree")
    fn, sn = index, size - 1
    result = _leaf(record_hash)
    for sibling in path:
        if sn == 0:
            raise ValueError("the audit path is too long")
        if fn & 1 or fn == sn:
            result = _node(sibling, result)
            while not fn & 1 and fn:
                fn >>= 1
                sn >>= 1
        else:
            result = _node(result, sibling)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ValueError("the audit path is too short")
    return result


# -- keys -----------------------------------------------------------------------------


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: hex SHA-256 of its raw bytes, 16 chars."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def write_keypair(private_path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Generate an Ed25519 key pair: ``private_path`` (mode 0600) and ``*.pub.pem``."""
    private_path = Path(private_path)
    public_path = private_path.with_name(private_path.stem + ".pub.pem")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    public_path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private_path, public_path


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """Read a PEM Ed25519 private key (as written by :func:`write_keypair`)."""
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """Read a PEM Ed25519 public key (or derive it from a private key file)."""
    data = Path(path).read_bytes()
    if b"PRIVATE KEY" in data:
        return load_private_key(path).public_key()
    key = serialization.load_pem_public_key(data)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{path} is not an Ed25519 public key")
    return key


def hash_key_from(private_key: Ed25519PrivateKey) -> bytes:
    """The HMAC key for hash-only values, derived from the signing key (HKDF-SHA256)."""
    raw = private_key.private_bytes(serialization.Encoding.Raw,
                                    serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
    return HKDF(algorithm=SHA256(), length=32, salt=None,
                info=b"langchain-secure/audit/hash-only").derive(raw)


def keyed_hash(key: bytes, value: Any) -> str:
    """``hmac-sha256:<hex>`` of a value's canonical JSON."""
    digest = hmac.new(key, canonical_json(value), hashlib.sha256).hexdigest()
    return f"hmac-sha256:{digest}"


# -- checkpoints and proofs --------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: records ``start..end`` of ``log_id`` have this Merkle root.

    Attributes:
        log_id: The log the checkpoint belongs to.
        start: First record covered (inclusive).
        end: Last record covered (inclusive).
        root: Hex Merkle root over the records' hashes.
        end_hash: Hex hash of record ``end`` (binds the chain head).
        ts: When it was signed.
        key_id: Which key signed it.
        signature: Base64 Ed25519 signature over the canonical JSON of the rest.
    """

    log_id: str
    start: int
    end: int
    root: str
    end_hash: str
    ts: str
    key_id: str
    signature: str = ""

    def signed_bytes(self) -> bytes:
        """What the signature covers: every field but the signature, canonically."""
        fields = asdict(self)
        fields.pop("signature")
        fields["v"] = 1
        return canonical_json(fields)

    def sign(self, private_key: Ed25519PrivateKey) -> Checkpoint:
        """A copy carrying a signature by ``private_key``."""
        signature = base64.b64encode(private_key.sign(self.signed_bytes())).decode("ascii")
        return Checkpoint(**{**asdict(self), "signature": signature})

    def signature_valid(self, public_key: Ed25519PublicKey) -> bool:
        """True when the signature is ``public_key``'s over :meth:`signed_bytes`."""
        try:
            public_key.verify(base64.b64decode(self.signature, validate=True),
                              self.signed_bytes())
        except (InvalidSignature, ValueError):
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checkpoint:
        """Inverse of :meth:`to_json`."""
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class InclusionProof:
    """Proof that one record is covered by a signed checkpoint.

    It carries the record itself (its data, sequence number and the hash it
    chains from) but nothing of any other record except sibling hashes.
    """

    seq: int
    prev_hash: str
    data: str
    path: tuple[str, ...]
    checkpoint: Checkpoint

    def record_hash(self) -> bytes:
        """The record's hash, recomputed from its content."""
        return chain_hash(bytes.fromhex(self.prev_hash), self.seq, self.data.encode("utf-8"))

    def verify(self, public_keys: Sequence[Ed25519PublicKey]) -> str | None:
        """None when the proof holds under one of ``public_keys``; else what fails."""
        cp = self.checkpoint
        keys = {key_id(k): k for k in public_keys}
        if cp.key_id not in keys:
            return f"the checkpoint was signed by key {cp.key_id}, which is not trusted"
        if not cp.signature_valid(keys[cp.key_id]):
            return "the checkpoint's signature is not valid"
        if not cp.start <= self.seq <= cp.end:
            return f"record {self.seq} is outside the checkpoint's range {cp.start}..{cp.end}"
        try:
            root = root_from_path(self.record_hash(), self.seq - cp.start,
                                  cp.end - cp.start + 1, [bytes.fromhex(p) for p in self.path])
        except ValueError as exc:
            return f"the audit path is malformed: {exc}"
        if root.hex() != cp.root:
            return "the record and its audit path do not lead to the signed root"
        return None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"seq": self.seq, "prev_hash": self.prev_hash, "data": self.data,
                "path": list(self.path), "checkpoint": self.checkpoint.to_json()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InclusionProof:
        """Inverse of :meth:`to_json`."""
        return cls(seq=int(data["seq"]), prev_hash=str(data["prev_hash"]),
                   data=str(data["data"]), path=tuple(data["path"]),
                   checkpoint=Checkpoint.from_json(data["checkpoint"]))
