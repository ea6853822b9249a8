"""SecretBox: round trip, rotation, errors that leak nothing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from workflow_store.crypto import SecretBox, parse_keys
from workflow_store.errors import InvalidEncryptionKeyError, SecretDecryptionError, StoreError

SECRET = "s3cr3t-client-secret-value"
OLD = SecretBox.generate_key()
NEW = SecretBox.generate_key()


@given(st.text())
def test_round_trip(plaintext: str) -> None:
    box = SecretBox([OLD])
    token = box.encrypt(plaintext)
    assert plaintext == box.decrypt(token)


def test_each_encryption_differs() -> None:
    box = SecretBox([OLD])
    first = box.encrypt(SECRET)
    assert first != box.encrypt(SECRET)
    assert SECRET not in first


def test_rotation_with_two_keys() -> None:
    old_token = SecretBox([OLD]).encrypt(SECRET)
    both = SecretBox([NEW, OLD])
    assert both.decrypt(old_token) == SECRET  # old tokens keep working

    rotated = both.rotate(old_token)
    assert SecretBox([NEW]).decrypt(rotated) == SECRET
    with pytest.raises(SecretDecryptionError):
        SecretBox([OLD]).decrypt(rotated)

    # new tokens are made with the newest (first) key
    assert SecretBox([NEW]).decrypt(both.encrypt(SECRET)) == SECRET


def test_wrong_key_raises_without_leaking() -> None:
    token = SecretBox([OLD]).encrypt(SECRET)
    with pytest.raises(SecretDecryptionError) as info:
        SecretBox([NEW]).decrypt(token)
    assert isinstance(info.value, StoreError)
    text = str(info.value) + repr(info.value)
    for leaked in (SECRET, token, OLD, NEW):
        assert leaked not in text
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


@pytest.mark.parametrize("token", ["", "not-a-token", "gAAAAA", "ünïcode"])
def test_garbage_tokens_raise_decryption_error(token: str) -> None:
    with pytest.raises(SecretDecryptionError):
        SecretBox([OLD]).decrypt(token)
    with pytest.raises(SecretDecryptionError):
        SecretBox([OLD]).rotate(token)


@pytest.mark.parametrize("bad", ["changeme", "xxx", "", "A" * 44 + "=="])
def test_malformed_key_names_its_position_not_its_value(bad: str) -> None:
    with pytest.raises(InvalidEncryptionKeyError, match="#2") as info:
        SecretBox([NEW, bad])
    if bad:
        assert bad not in str(info.value)
    assert NEW not in str(info.value)


def test_no_keys_is_an_error() -> None:
    with pytest.raises(InvalidEncryptionKeyError):
        SecretBox([])
    with pytest.raises(TypeError):
        SecretBox(NEW)  # a single string is not a list of keys


def test_repr_shows_only_the_key_count() -> None:
    box = SecretBox([NEW, OLD])
    assert repr(box) == "SecretBox(keys=2)"
    assert NEW not in repr(box)
    assert OLD not in str(box)
    assert box.key_count == 2


def test_generate_key_is_a_valid_fernet_key() -> None:
    key = SecretBox.generate_key()
    assert isinstance(key, str)
    assert len(key) == 44
    SecretBox([key])


def test_parse_keys() -> None:
    assert parse_keys(f" {NEW} , ,{OLD},") == [NEW, OLD]
    assert parse_keys("") == []
