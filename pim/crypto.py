"""Encryption at rest for credentials (Fernet), with key rotation.

PIM_SECRET_KEY holds one or more comma-separated secrets, newest first: new
values are encrypted with the first, and any of them decrypts, so a key can be
rotated by prepending a new one and re-encrypting at leisure. Unset, a secret
is generated once into the data folder (the embedded default).
"""

import base64
import hashlib
import secrets
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from pim.private_files import private_dir, private_file
from pim.settings import Settings


class DecryptionFailed(Exception):
    """The value was encrypted with a key that is no longer configured, or altered."""


def _fernet_key(secret: str) -> bytes:
    # Any length of secret works: derive the 32 bytes Fernet wants.
    return base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest())


def secrets_of(settings: Settings) -> list[str]:
    if settings.secret_key:
        return [s.strip() for s in settings.secret_key.split(",") if s.strip()]
    path = settings.data_dir / "secret.key"
    private_dir(settings.data_dir)
    private_file(path, secrets.token_urlsafe(48).encode())  # kept if it exists
    return [path.read_text().strip()]


class Cipher:
    def __init__(self, secret_list: list[str]) -> None:
        if not secret_list:
            raise ValueError("at least one secret is needed")
        self._fernet = MultiFernet([Fernet(_fernet_key(s)) for s in secret_list])

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise DecryptionFailed() from exc

    def rotate(self, token: str) -> str:
        """Re-encrypt with the newest secret."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken as exc:
            raise DecryptionFailed() from exc


@lru_cache(maxsize=8)
def _cipher(secret_tuple: tuple[str, ...]) -> Cipher:
    return Cipher(list(secret_tuple))


def cipher_for(settings: Settings) -> Cipher:
    return _cipher(tuple(secrets_of(settings)))
