"""Personal data encrypted at rest: round trips, tamper detection, blind indexes, key configuration."""
from __future__ import annotations

import base64
import os
import stat

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from kefu.core.config import ConfigError
from kefu.core.crypto import (
    DecryptionFailed, FieldCipher, data_key_from_config, generate_data_key, old_data_keys_from_config,
)
from kefu.core.errors import DomainError

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))


@pytest.fixture
def cipher():
    return FieldCipher(KEY)


@pytest.mark.parametrize("text", ["13812345678", "张三 浙江省杭州市西湖区文三路 100 号 3 幢 1 单元 502 室", "", "emoji 🏠"])
def test_round_trip(cipher, text):
    blob = cipher.encrypt(text, context="complaint.phone")
    assert isinstance(blob, bytes)
    assert cipher.decrypt(blob, context="complaint.phone") == text


def test_ciphertext_reveals_no_plaintext_and_is_randomised(cipher):
    text = "王小明 13812345678 330106199001011234"
    blob = cipher.encrypt(text, context="customer.notes")
    plain = text.encode("utf-8")
    for start in range(0, len(plain) - 3):
        assert plain[start:start + 4] not in blob
    assert blob[0] == 2 and len(blob) == 1 + 8 + 12 + len(plain) + 16
    assert blob[1:9].hex() == cipher.key_id  # every ciphertext names its key
    again = cipher.encrypt(text, context="customer.notes")
    assert again != blob and again[9:21] != blob[9:21]  # fresh nonce every time


def test_wrong_context_wrong_key_and_tampering_fail(cipher):
    blob = cipher.encrypt("13812345678", context="complaint.phone")
    with pytest.raises(DecryptionFailed):
        cipher.decrypt(blob, context="complaint.id_number")
    with pytest.raises(DecryptionFailed):
        FieldCipher(OTHER_KEY).decrypt(blob, context="complaint.phone")
    for position in (0, 1, 8, 9, 20, 21, len(blob) - 1):  # version, key id, nonce, ciphertext, tag
        tampered = bytearray(blob)
        tampered[position] ^= 0x01
        with pytest.raises(DecryptionFailed):
            cipher.decrypt(bytes(tampered), context="complaint.phone")
    with pytest.raises(DecryptionFailed):
        cipher.decrypt(blob[:20], context="complaint.phone")
    with pytest.raises(DecryptionFailed):
        cipher.decrypt(b"", context="complaint.phone")


def test_decryption_failed_is_a_readable_domain_error(cipher):
    blob = cipher.encrypt("x", context="complaint.phone")
    with pytest.raises(DecryptionFailed) as caught:
        cipher.decrypt(blob, context="complaint.email")
    assert isinstance(caught.value, DomainError)
    assert "complaint.email" in str(caught.value) and "无法解密" in str(caught.value)
    assert caught.value.code == "decryption_failed"


def test_blind_index_is_deterministic_and_separated_by_context_and_key(cipher):
    index = cipher.blind_index("13812345678", context="complaint.phone")
    assert index == cipher.blind_index("13812345678", context="complaint.phone")
    assert index == FieldCipher(KEY).blind_index("13812345678", context="complaint.phone")
    assert len(index) == 64 and int(index, 16) >= 0
    assert index != cipher.blind_index("13812345679", context="complaint.phone")
    assert index != cipher.blind_index("13812345678", context="customer.phone")
    assert index != FieldCipher(OTHER_KEY).blind_index("13812345678", context="complaint.phone")
    assert "13812345678" not in index
    # the context and value cannot be shifted into one another
    assert cipher.blind_index("b", context="a.a") != cipher.blind_index("ab", context="a.")


def test_encryption_and_index_keys_are_distinct_derivations(cipher):
    import hashlib
    import hmac

    message_under_master = hmac.new(KEY, b"13812345678", hashlib.sha256).hexdigest()
    assert cipher.blind_index("13812345678", context="complaint.phone") != message_under_master
    assert KEY.hex() not in repr(cipher) and str(KEY) not in repr(cipher)


def test_bad_arguments_are_programming_errors(cipher):
    with pytest.raises(ValueError):
        FieldCipher(b"short")
    with pytest.raises(ValueError):
        cipher.encrypt("x", context="")
    with pytest.raises(TypeError):
        cipher.encrypt(b"bytes", context="complaint.phone")



# --- the keyring ------------------------------------------------------------------------


def legacy_blob(master_key: bytes, text: str, context: str) -> bytes:
    """A value as format 1 stored it (before key ids): version byte 1, nonce, AES-GCM of the text."""
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"kefu field encryption v1").derive(master_key)
    nonce = os.urandom(12)
    return b"\x01" + nonce + AESGCM(key).encrypt(nonce, text.encode(), b"\x01" + context.encode())


def test_key_id_names_the_key_without_revealing_it(cipher):
    assert len(cipher.key_id) == 16 and int(cipher.key_id, 16) >= 0
    assert cipher.key_id == FieldCipher(KEY).key_id != FieldCipher(OTHER_KEY).key_id
    assert cipher.key_id not in KEY.hex()
    assert FieldCipher(OTHER_KEY, [KEY]).key_ids == (FieldCipher(OTHER_KEY).key_id, cipher.key_id)
    assert FieldCipher(KEY, [KEY]).key_ids == (cipher.key_id,)  # the same key twice is one key


def test_old_keys_decrypt_new_values_use_the_primary_key(cipher):
    old_blob = cipher.encrypt("13812345678", context="complaint.phone")
    ring = FieldCipher(OTHER_KEY, [KEY])
    assert ring.decrypt(old_blob, context="complaint.phone") == "13812345678"
    assert ring.opening_key_id(old_blob, context="complaint.phone") == cipher.key_id
    new_blob = ring.encrypt("13900001111", context="complaint.phone")
    assert new_blob[1:9].hex() == ring.key_id == FieldCipher(OTHER_KEY).key_id
    assert FieldCipher(OTHER_KEY).decrypt(new_blob, context="complaint.phone") == "13900001111"
    with pytest.raises(DecryptionFailed):
        cipher.decrypt(new_blob, context="complaint.phone")  # the old key alone cannot read what the new one wrote


def test_reencrypt_moves_a_value_to_the_primary_key_once(cipher):
    ring = FieldCipher(OTHER_KEY, [KEY])
    old_blob = cipher.encrypt("张三", context="customer.name")
    assert not ring.under_primary_key(old_blob)
    moved = ring.reencrypt(old_blob, context="customer.name")
    assert ring.under_primary_key(moved) and FieldCipher(OTHER_KEY).decrypt(moved, context="customer.name") == "张三"
    assert ring.reencrypt(moved, context="customer.name") == moved  # already under the primary key: unchanged
    with pytest.raises(DecryptionFailed):
        FieldCipher(OTHER_KEY).reencrypt(old_blob, context="customer.name")  # the old key is not in this ring


def test_version_1_values_still_decrypt_with_any_key_of_the_ring(cipher):
    blob = legacy_blob(KEY, "13812345678", "complaint.phone")
    assert cipher.decrypt(blob, context="complaint.phone") == "13812345678"
    ring = FieldCipher(OTHER_KEY, [KEY])
    assert ring.decrypt(blob, context="complaint.phone") == "13812345678"
    assert ring.opening_key_id(blob, context="complaint.phone") == cipher.key_id
    assert ring.under_primary_key(ring.reencrypt(blob, context="complaint.phone"))
    with pytest.raises(DecryptionFailed):
        FieldCipher(OTHER_KEY).decrypt(blob, context="complaint.phone")
    with pytest.raises(DecryptionFailed):
        cipher.decrypt(blob, context="complaint.id_number")


def test_blind_indexes_cover_every_key_of_the_ring_primary_first(cipher):
    ring = FieldCipher(OTHER_KEY, [KEY])
    indexes = ring.blind_indexes("13812345678", context="complaint.phone")
    assert indexes == [FieldCipher(OTHER_KEY).blind_index("13812345678", context="complaint.phone"),
                       cipher.blind_index("13812345678", context="complaint.phone")]
    assert ring.blind_index("13812345678", context="complaint.phone") == indexes[0]

def test_stored_in_mongodb_found_by_blind_index(db, cipher):
    people = [("张三", "13812345678"), ("李四", "13900001111"), ("王五", "0571-87654321")]
    db.complaints.insert_many([
        {
            "name_enc": cipher.encrypt(name, context="complaint.name"),
            "phone_enc": cipher.encrypt(phone, context="complaint.phone"),
            "phone_bidx": cipher.blind_index(phone, context="complaint.phone"),
        }
        for name, phone in people
    ])
    raw = db.complaints.find_one({"phone_bidx": cipher.blind_index("13900001111", context="complaint.phone")})
    assert raw is not None
    assert cipher.decrypt(raw["name_enc"], context="complaint.name") == "李四"
    assert cipher.decrypt(raw["phone_enc"], context="complaint.phone") == "13900001111"
    assert db.complaints.count_documents({"phone_bidx": cipher.blind_index("13900001112", context="complaint.phone")}) == 0
    # nothing readable was stored
    for document in db.complaints.find():
        stored = repr(document).encode()
        assert b"13900001111" not in stored and "李四".encode() not in bytes(document["name_enc"])


# --- configuration --------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No key in the environment, not embedded, an empty var dir."""
    monkeypatch.setenv("KEFU_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("KEFU_DATA_KEY", raising=False)
    monkeypatch.delenv("KEFU_EMBEDDED", raising=False)
    return tmp_path / "var"


def test_generate_data_key_gives_32_random_bytes():
    key = generate_data_key()
    assert len(base64.b64decode(key, validate=True)) == 32
    assert key != generate_data_key()


def test_key_from_config_and_environment(clean_env, monkeypatch):
    key = generate_data_key()
    assert data_key_from_config({"KEFU_DATA_KEY": key}) == base64.b64decode(key)
    assert data_key_from_config({"KEFU_DATA_KEY": base64.urlsafe_b64encode(KEY).decode().rstrip("=")}) == KEY
    monkeypatch.setenv("KEFU_DATA_KEY", base64.b64encode(KEY).decode())
    assert data_key_from_config({}) == KEY
    assert data_key_from_config({"KEFU_DATA_KEY": key}) == base64.b64decode(key)  # config wins
    assert FieldCipher.from_config({}).blind_index("x", context="c") == FieldCipher(KEY).blind_index("x", context="c")



def test_old_keys_from_config_comma_separated(clean_env, monkeypatch):
    assert old_data_keys_from_config({}) == [] and old_data_keys_from_config({"KEFU_DATA_KEY_OLD": None}) == []
    both = f"{base64.b64encode(KEY).decode()}, {base64.b64encode(OTHER_KEY).decode()}"
    assert old_data_keys_from_config({"KEFU_DATA_KEY_OLD": both}) == [KEY, OTHER_KEY]
    monkeypatch.setenv("KEFU_DATA_KEY_OLD", base64.b64encode(KEY).decode())
    monkeypatch.setenv("KEFU_DATA_KEY", base64.b64encode(OTHER_KEY).decode())
    assert FieldCipher.from_config({}).key_ids == (FieldCipher(OTHER_KEY).key_id, FieldCipher(KEY).key_id)
    with pytest.raises(ConfigError) as caught:
        old_data_keys_from_config({"KEFU_DATA_KEY_OLD": f"{base64.b64encode(KEY).decode()},short"})
    message = str(caught.value)
    assert message.startswith("KEFU_DATA_KEY_OLD (key 2) ") and "\n" not in message and "short" not in message

def test_missing_key_outside_embedded_mode_is_one_readable_line(clean_env):
    with pytest.raises(ConfigError) as caught:
        data_key_from_config({})
    message = str(caught.value)
    assert message.startswith("KEFU_DATA_KEY is not set")
    assert "base64.b64encode(os.urandom(32))" in message and "\n" not in message
    assert not clean_env.exists()


@pytest.mark.parametrize("bad", ["not base64 at all!", base64.b64encode(b"x" * 16).decode(), base64.b64encode(b"x" * 33).decode()])
def test_malformed_key_is_refused_without_echoing_it(clean_env, bad):
    with pytest.raises(ConfigError) as caught:
        data_key_from_config({"KEFU_DATA_KEY": bad})
    message = str(caught.value)
    assert "KEFU_DATA_KEY" in message and bad not in message and "\n" not in message


def test_embedded_mode_generates_the_key_once_and_keeps_it_private(clean_env):
    key = data_key_from_config({"KEFU_EMBEDDED": "1"})
    key_file = clean_env / "data_key"
    assert len(key) == 32 and key_file.exists()
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    # the next start (even without the flag, since the file is there) reads the same key
    assert data_key_from_config({}) == key
    assert data_key_from_config({"KEFU_EMBEDDED": "1"}) == key


def test_embedded_mode_from_environment_and_launcher_file(clean_env, monkeypatch):
    monkeypatch.setenv("KEFU_EMBEDDED", "1")
    key = data_key_from_config({})
    assert (clean_env / "data_key").exists() and len(key) == 32


def test_embedded_flag_zero_is_not_embedded(clean_env):
    with pytest.raises(ConfigError, match="KEFU_DATA_KEY is not set"):
        data_key_from_config({"KEFU_EMBEDDED": "0"})


def test_corrupt_embedded_key_file_is_named(clean_env):
    clean_env.mkdir(parents=True)
    (clean_env / "data_key").write_text("garbage!!")
    with pytest.raises(ConfigError) as caught:
        data_key_from_config({"KEFU_EMBEDDED": "1"})
    assert "data_key" in str(caught.value)
