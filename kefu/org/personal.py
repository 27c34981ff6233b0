"""Personal data on the organisation's documents (customers' phone, ID number and address, users' phone), encrypted
at rest with the app's ``kefu.core.crypto.FieldCipher``.

Each value is stored as an AES-GCM ciphertext bound to its field (the ``context``, such as ``"customer.phone"``: a
ciphertext copied into another field no longer decrypts); a value looked up exactly also stores a blind index of its
canonical form. Nothing here decides who may read a value: the services mask it per permission.
"""
from __future__ import annotations

from flask import current_app

from kefu.core.crypto import FieldCipher

# Characters kept at the start of a masked address: the city and district say where, not who.
ADDRESS_KEPT = 6


def field_cipher() -> FieldCipher:
    """The app's cipher (``app.extensions["kefu_cipher"]``)."""
    return current_app.extensions["kefu_cipher"]


def seal(text: str | None, context: str) -> bytes | None:
    """``text`` encrypted for the field ``context``; None for no value (None or blank)."""
    return field_cipher().encrypt(text, context=context) if text else None


def unseal(blob, context: str) -> str | None:
    """The text ``seal`` was given; None for no value. Raises ``kefu.core.crypto.DecryptionFailed``."""
    return field_cipher().decrypt(blob, context=context) if blob else None


def index_of(canonical: str | None, context: str) -> str | None:
    """The blind index stored next to a value (its canonical form under the primary key); None for no value."""
    return field_cipher().blind_index(canonical, context=context) if canonical else None


def lookup_keys(canonical: str, context: str) -> list[str]:
    """The blind indexes a stored value of ``canonical`` may have (one per key of the ring, during a rotation):
    an exact lookup matches any of them."""
    return field_cipher().blind_indexes(canonical, context=context)


def mask_address(address: str | None) -> str:
    """An address with all but its first few characters hidden: ``杭州市西湖区****``; blank gives ""."""
    text = (address or "").strip()
    if not text:
        return ""
    return text[:ADDRESS_KEPT] + "****" if len(text) > ADDRESS_KEPT else "****"
