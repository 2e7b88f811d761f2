"""Agent passwords: argon2id hashes (argon2-cffi), verified off the event loop by callers."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_HASHER = PasswordHasher()  # argon2id, library defaults (RFC 9106 low-memory profile)


def hash_password(password: str) -> str:
    if not password:
        raise ValueError("empty password")
    return _HASHER.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
