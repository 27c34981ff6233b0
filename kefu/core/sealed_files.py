"""Files kept encrypted at rest (exports in GridFS): AES-256-GCM over fixed-size segments, written and read as streams.

Each file has its own random 32-byte key; whoever stores the file keeps that key encrypted with the
:class:`kefu.core.crypto.FieldCipher` (so a key rotation re-encrypts 32 bytes, never the file). The plaintext is cut
into segments of ``SEGMENT_BYTES``; each is sealed under the nonce ``segment number (11 bytes) + last flag (1 byte)``,
so a segment cannot be moved, repeated or dropped, and a file cut short after any segment is refused (the STREAM
construction of Hoang, Reyhanitabar, Rogaway and Vizár). A file of ``n`` plaintext bytes stores
``n + 16 * segments`` bytes; an empty file is one sealed empty segment.
"""
from __future__ import annotations

import os
from typing import Callable, Iterable, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kefu.core.crypto import KEY_SIZE, TAG_SIZE, DecryptionFailed
from kefu.core.i18n import _l

SEGMENT_BYTES = 256 * 1024


def new_file_key() -> bytes:
    """A fresh random key for one file."""
    return os.urandom(KEY_SIZE)


def _nonce(number: int, last: bool) -> bytes:
    return number.to_bytes(11, "big") + (b"\x01" if last else b"\x00")


def seal(chunks: Iterable[bytes], key: bytes) -> Iterator[bytes]:
    """The sealed segments of the bytes ``chunks`` yields (in any sizes), one ``bytes`` per segment; holds at most
    one segment of plaintext at a time."""
    aead = AESGCM(key)
    pending = bytearray()
    number = 0
    for chunk in chunks:
        pending += chunk
        # Strictly more than a segment: the last segment is sealed as last once ``chunks`` ends.
        while len(pending) > SEGMENT_BYTES:
            yield aead.encrypt(_nonce(number, False), bytes(pending[:SEGMENT_BYTES]), None)
            del pending[:SEGMENT_BYTES]
            number += 1
    yield aead.encrypt(_nonce(number, True), bytes(pending), None)


def _read_exactly(read: Callable[[int], bytes], size: int) -> bytes:
    parts, remaining = [], size
    while remaining:
        data = read(remaining)
        if not data:
            break
        parts.append(data)
        remaining -= len(data)
    return b"".join(parts)


def unseal(read: Callable[[int], bytes], key: bytes) -> Iterator[bytes]:
    """The plaintext of a file ``seal`` wrote, one segment at a time, read through ``read(size)`` (a stream's
    ``read``). Raises :class:`kefu.core.crypto.DecryptionFailed` for a wrong key or a changed, reordered or cut file
    (the segments before the damage have been yielded by then)."""
    aead = AESGCM(key)
    size = SEGMENT_BYTES + TAG_SIZE
    current = _read_exactly(read, size)
    number = 0
    while True:
        following = _read_exactly(read, size) if len(current) == size else b""
        last = not following
        try:
            yield aead.decrypt(_nonce(number, last), current, None)
        except InvalidTag:
            raise DecryptionFailed(_l("加密文件无法解密：密钥不符或文件已被改动")) from None
        if last:
            return
        current, number = following, number + 1


class SealedReader:
    """A file-like view (``read(size)``) of the plaintext of a sealed stream, for code that streams a file."""

    def __init__(self, read: Callable[[int], bytes], key: bytes):
        self._segments = unseal(read, key)
        self._buffer = bytearray()

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` plaintext bytes (all that is left for a negative ``size``); ``b""`` at the end."""
        while size < 0 or len(self._buffer) < size:
            segment = next(self._segments, None)
            if segment is None:
                break
            self._buffer += segment
        taken = bytes(self._buffer if size < 0 else self._buffer[:size])
        del self._buffer[:len(taken)]
        return taken
