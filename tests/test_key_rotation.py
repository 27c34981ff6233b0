"""Key management: the start-up check against the key this database was encrypted with, the keyring of a rotation
and ``flask kefu rotate-key`` — over the real app, API and MongoDB."""
from __future__ import annotations

import base64
import subprocess
import sys

import pytest

from app import create_app
from kefu.core.config import PROJECT_ROOT, ConfigError
from kefu.core.crypto import FieldCipher, key_id_of
from kefu.core.db import get_database
from kefu.core.encrypted_stores import EncryptedField, EncryptedFields
from kefu.notify.channels import save_settings
from kefu.runtime.embedded import free_port
from kefu.runtime.keys import ENCRYPTED_STORES
from tests.conftest import TEST_DATA_KEY
from tests.test_crypto import legacy_blob
from tests.test_records_api import PHONE, create

OLD_KEY = base64.b64decode(TEST_DATA_KEY)
NEW_KEY = bytes(range(100, 132))
NEW_KEY_TEXT = base64.b64encode(NEW_KEY).decode()
OLD, NEW = FieldCipher(OLD_KEY), FieldCipher(NEW_KEY)
OTHER_PHONE = "13900001111"


def start(app_config, **keys):
    """A new app (as another process would start) on the test's database, with these key settings."""
    return create_app({**app_config, **keys})


def mongo():
    """The test's database through the current connection (each start connects anew, closing the last one)."""
    return get_database()


def database_state(db) -> dict:
    """Every collection's documents and indexes, to show a refused start changed nothing."""
    return {name: (list(db[name].find({}, sort=[("_id", 1)])), sorted(db[name].index_information()))
            for name in sorted(db.list_collection_names())}


def search(client, headers, **params):
    response = client.get("/api/v1/records/complaint", query_string=params, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return sorted(item["number"] for item in response.get_json()["items"])


@pytest.fixture
def phones(client, admin):
    """Three complaints registered under the test key (the old key below): two with PHONE, one with OTHER_PHONE."""
    return [create(client, admin, phone=phone) for phone in (PHONE, PHONE, OTHER_PHONE)]


# --- the start-up check ---------------------------------------------------------------------------------------------


def test_a_fresh_database_records_no_key_until_it_holds_ciphertext(app, app_config, phones):
    assert mongo().kefu_meta.count_documents({}) == 0  # the first start found nothing encrypted
    start(app_config)
    assert mongo().kefu_meta.find_one({"_id": "data_key"}, {"_id": 0, "updated_at": 0}) == {
        "key_id": OLD.key_id, "older_key_ids": []}
    start(app_config)  # the right key starts again
    assert mongo().kefu_meta.count_documents({}) == 1


@pytest.mark.parametrize("recorded", [True, False], ids=["key-recorded", "database-from-before-key-ids"])
def test_a_wrong_key_refuses_to_start_with_one_line_and_writes_nothing(app, app_config, phones, recorded):
    if recorded:
        start(app_config)
    before = database_state(mongo())
    with pytest.raises(ConfigError) as caught:
        start(app_config, KEFU_DATA_KEY=NEW_KEY_TEXT)
    message = str(caught.value)
    assert message == (f"KEFU_DATA_KEY does not match the key this database was encrypted with (key id {OLD.key_id}); "
                       "set the right key, or for a rotation put the old key in KEFU_DATA_KEY_OLD")
    assert NEW_KEY_TEXT not in message and TEST_DATA_KEY not in message
    assert database_state(mongo()) == before


def test_a_refused_start_through_the_launcher_prints_one_line(app, app_config, phones, tmp_path):
    start(app_config)
    env = {"PATH": "/usr/bin:/bin", "KEFU_VAR_DIR": str(tmp_path), "KEFU_PORT": str(free_port()),
           "MONGODB_URI": app_config["MONGODB_URI"], "MONGODB_DB": app_config["MONGODB_DB"],
           "REDIS_URL": app_config["REDIS_URL"], "SECRET_KEY": "x", "KEFU_DATA_KEY": NEW_KEY_TEXT}
    before = database_state(mongo())
    result = subprocess.run([sys.executable, "-m", "kefu.runtime.launcher", "up"], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode == 1
    assert output == f"[kefu] cannot start: KEFU_DATA_KEY does not match the key this database was encrypted with " \
                     f"(key id {OLD.key_id}); set the right key, or for a rotation put the old key in KEFU_DATA_KEY_OLD"
    assert database_state(mongo()) == before


# --- a rotation -----------------------------------------------------------------------------------------------------


def test_during_a_rotation_old_values_read_and_search_and_new_ones_use_the_new_key(app, app_config, admin,
                                                                                   phones):
    rotating = start(app_config, KEFU_DATA_KEY=NEW_KEY_TEXT, KEFU_DATA_KEY_OLD=TEST_DATA_KEY)
    client = rotating.test_client()
    assert mongo().kefu_meta.find_one({"_id": "data_key"})["older_key_ids"] == [OLD.key_id]

    shown = client.get(f"/api/v1/records/complaint/{phones[0]['id']}", headers=admin).get_json()
    assert shown["phone"] == PHONE
    added = create(client, admin, phone=PHONE)
    stored = mongo().records.find_one({"number": added["number"]})
    assert key_id_of(stored["pii"]["phone"]) == NEW.key_id
    assert stored["bidx"]["phone"] == NEW.blind_index(PHONE, context="complaint.phone")
    # Exact search matches the old records' indexes and the new one's.
    numbers = sorted([phones[0]["number"], phones[1]["number"], added["number"]])
    assert search(client, admin, phone=PHONE) == numbers
    assert search(client, admin, q=PHONE) == numbers

    # Going back to the old key alone would leave the new record unreadable: refused.
    with pytest.raises(ConfigError, match="a key rotation of this database has not finished") as caught:
        start(app_config)
    assert NEW.key_id in str(caught.value) and "\n" not in str(caught.value)


def test_rotate_key_moves_every_value_to_the_new_key_in_batches(app, app_config, admin, phones):
    with app.app_context():
        save_settings({}, OLD, smtp_password="smtp-secret")
    legacy = mongo().records.find_one({"number": phones[2]["number"]})
    mongo().records.update_one({"_id": legacy["_id"]}, {"$set": {"pii.phone": legacy_blob(
        OLD_KEY, f'"{OTHER_PHONE}"', "complaint.phone")}})  # written before key ids existed
    rotating = start(app_config, KEFU_DATA_KEY=NEW_KEY_TEXT, KEFU_DATA_KEY_OLD=TEST_DATA_KEY)
    client = rotating.test_client()
    assert client.get(f"/api/v1/records/complaint/{phones[2]['id']}", headers=admin).get_json()["phone"] == OTHER_PHONE
    untouched = mongo().records.find_one({"_id": legacy["_id"]}, {"grams": 0, "search_text": 0})

    result = rotating.test_cli_runner().invoke(args=["kefu", "rotate-key", "--batch-size", "2"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:2] == ["records: 2/3", "records: 3/3"] and "notification_settings: 1/1" in lines
    assert lines[-1] == f"every encrypted value is under key id {NEW.key_id}; KEFU_DATA_KEY_OLD can be removed now"

    for record in mongo().records.find({"pii": {"$ne": {}}}):
        assert key_id_of(record["pii"]["phone"]) == NEW.key_id and record["enc_key"] == NEW.key_id
        phone = PHONE if record["number"] != phones[2]["number"] else OTHER_PHONE
        assert NEW.decrypt(record["pii"]["phone"], context="complaint.phone") == f'"{phone}"'
        assert record["bidx"]["phone"] == NEW.blind_index(phone, context="complaint.phone")
    moved = mongo().records.find_one({"_id": legacy["_id"]}, {"grams": 0, "search_text": 0})
    assert {k: v for k, v in moved.items() if k not in ("pii", "bidx", "enc_key")} == \
        {k: v for k, v in untouched.items() if k not in ("pii", "bidx")}  # nothing else of the record changed
    smtp = mongo().notification_settings.find_one({})["smtp_password_encrypted"]
    assert NEW.decrypt(bytes.fromhex(smtp), context="smtp.password") == "smtp-secret"
    assert mongo().kefu_meta.find_one({"_id": "data_key"})["older_key_ids"] == []

    # The new key alone now reads and finds everything; the old one alone is refused.
    rotated = start(app_config, KEFU_DATA_KEY=NEW_KEY_TEXT)
    client = rotated.test_client()
    assert search(client, admin, phone=PHONE) == sorted([phones[0]["number"], phones[1]["number"]])
    assert search(client, admin, phone=OTHER_PHONE) == [phones[2]["number"]]
    with rotated.app_context():
        save_settings({}, rotated.extensions["kefu_cipher"])  # the settings still load with their new ciphertext
    with pytest.raises(ConfigError, match=f"KEFU_DATA_KEY does not match .*key id {NEW.key_id}"):
        start(app_config)

    # Running it again changes nothing.
    before = database_state(mongo())
    again = start(app_config, KEFU_DATA_KEY=NEW_KEY_TEXT).test_cli_runner().invoke(args=["kefu", "rotate-key"])
    assert again.exit_code == 0, again.output
    assert again.output.splitlines()[:-1] == [f"{store.name}: nothing to re-encrypt" for store in ENCRYPTED_STORES]
    assert database_state(mongo()) == before


def test_a_rotation_that_stopped_half_way_is_finished_by_the_next_run(app, app_config, admin, phones):
    rotating = start(app_config, KEFU_DATA_KEY=NEW_KEY_TEXT, KEFU_DATA_KEY_OLD=TEST_DATA_KEY)
    records = next(store for store in ENCRYPTED_STORES if store.name == "records")
    with rotating.app_context():
        assert records.reencrypt_batch(rotating.extensions["kefu_cipher"], 1) == 1  # then the process died
    assert mongo().kefu_meta.find_one({"_id": "data_key"})["older_key_ids"] == [OLD.key_id]
    assert mongo().records.count_documents({"enc_key": NEW.key_id}) == 1

    result = rotating.test_cli_runner().invoke(args=["kefu", "rotate-key"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == "records: 2/2"
    assert {key_id_of(record["pii"]["phone"]) for record in mongo().records.find({"pii": {"$ne": {}}})} == {NEW.key_id}
    shown = rotating.test_client().get(f"/api/v1/records/complaint/{phones[1]['id']}", headers=admin).get_json()
    assert shown["phone"] == PHONE


def test_a_value_no_key_decrypts_stops_the_rotation_naming_it(app, app_config, phones):
    start(app_config)  # the key is recorded; then a value under a key nobody has appears
    stray = FieldCipher(bytes(32)).encrypt(f'"{PHONE}"', context="complaint.phone")
    mongo().records.update_one({"number": phones[0]["number"]}, {"$set": {"pii.phone": stray}})
    rotating = start(app_config, KEFU_DATA_KEY=NEW_KEY_TEXT, KEFU_DATA_KEY_OLD=TEST_DATA_KEY)
    result = rotating.test_cli_runner().invoke(args=["kefu", "rotate-key"])
    assert result.exit_code == 1
    record_id = mongo().records.find_one({"number": phones[0]["number"]})["_id"]
    assert f"{record_id}" in result.output and "pii.phone" in result.output and "KEFU_DATA_KEY_OLD" in result.output
    assert mongo().kefu_meta.find_one({"_id": "data_key"})["older_key_ids"] == [OLD.key_id]  # not done: old key kept



def test_a_collection_declares_its_ciphertexts_in_one_line_and_rotates(app):
    """The generic store other areas declare (``EncryptedFields``): binary and hex values, lists of values, blind
    indexes recomputed from the normalised text; no marker field (a value's header names its key)."""
    people = EncryptedFields("scratch_people", (
        EncryptedField("phone", "person.phone", index="phone_bidx", normalise=lambda text: text.replace("-", "")),
        EncryptedField("contact.addresses", "person.address"),
        EncryptedField("token", "person.token", as_hex=True),
    ))
    ring = FieldCipher(NEW_KEY, [OLD_KEY])
    collection = mongo().scratch_people
    collection.insert_many([
        {"_id": 1, "phone": OLD.encrypt("138-1234-5678", context="person.phone"), "phone_bidx": "stale"},
        {"_id": 2, "phone": NEW.encrypt("13900001111", context="person.phone"),
         "phone_bidx": NEW.blind_index("13900001111", context="person.phone")},
        {"_id": 3, "phone": legacy_blob(OLD_KEY, "13700000000", "person.phone"), "phone_bidx": "stale"},
        {"_id": 4, "contact": {"addresses": [NEW.encrypt("杭州", context="person.address"),
                                             OLD.encrypt("上海", context="person.address")]}},
        {"_id": 5, "token": OLD.encrypt("t0ken", context="person.token").hex()},
        {"_id": 6, "phone": None, "name": "无电话"},
    ])
    assert people.name == "scratch_people" and people.sample() is not None
    assert people.count_pending(ring) == 4  # 1, 3, 4 and 5: document 2 is under the new key already
    with app.app_context():
        assert people.reencrypt_batch(ring, 3) == 3
        assert people.reencrypt_batch(ring, 3) == 1
        assert people.reencrypt_batch(ring, 3) == 0
    assert people.count_pending(ring) == 0
    stored = {document["_id"]: document for document in collection.find()}
    assert NEW.decrypt(stored[1]["phone"], context="person.phone") == "138-1234-5678"
    assert stored[1]["phone_bidx"] == NEW.blind_index("13812345678", context="person.phone")
    assert stored[3]["phone_bidx"] == NEW.blind_index("13700000000", context="person.phone")
    assert [NEW.decrypt(blob, context="person.address") for blob in stored[4]["contact"]["addresses"]] == ["杭州", "上海"]
    assert NEW.decrypt(bytes.fromhex(stored[5]["token"]), context="person.token") == "t0ken"
    assert stored[6] == {"_id": 6, "phone": None, "name": "无电话"}
