"""Encryption at rest: round trip, rotation, and refusal of foreign or altered tokens."""

import pytest

from pim.crypto import Cipher, DecryptionFailed, cipher_for
from pim.settings import Settings


def test_round_trip_and_rotation_to_a_new_secret() -> None:
    old = Cipher(["ancien-secret"])
    token = old.encrypt("sftp-password")
    rotated = Cipher(["nouveau-secret", "ancien-secret"])
    assert rotated.decrypt(token) == "sftp-password"
    fresh = rotated.rotate(token)
    assert Cipher(["nouveau-secret"]).decrypt(fresh) == "sftp-password"
    with pytest.raises(DecryptionFailed):
        Cipher(["nouveau-secret"]).decrypt(token)


def test_altered_token_is_refused() -> None:
    cipher = Cipher(["s"])
    token = cipher.encrypt("x")
    with pytest.raises(DecryptionFailed):
        cipher.decrypt(token[:-4] + "AAAA")


def test_embedded_default_generates_and_keeps_a_secret(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path)
    token = cipher_for(settings).encrypt("x")
    assert (tmp_path / "secret.key").stat().st_mode & 0o777 == 0o600
    assert cipher_for(Settings(data_dir=tmp_path)).decrypt(token) == "x"
