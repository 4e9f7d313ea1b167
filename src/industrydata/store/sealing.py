"""Destination credentials are stored encrypted (Fernet) with a key kept in the data dir
(folder 0700, key 0600: ``private_files``)."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from ..private_files import private_folder, publish_private_file_once, tighten_file

__all__ = ["CredentialSealer"]


class CredentialSealer:
    """Seals credential dicts for storage and opens them for a run; the key never leaves here."""

    def __init__(self, key_path: Path) -> None:
        self._fernet = Fernet(self._load_or_create(key_path))

    @staticmethod
    def _load_or_create(key_path: Path) -> bytes:
        private_folder(key_path.parent)
        if key_path.exists():
            tighten_file(key_path)
            return key_path.read_bytes().strip()
        return publish_private_file_once(key_path, Fernet.generate_key()).strip()

    def seal(self, credential: dict[str, str]) -> bytes:
        return self._fernet.encrypt(json.dumps(credential).encode())

    def open(self, sealed: bytes) -> dict[str, str]:
        """The credential; ValueError (without the secret) when the key does not fit."""
        try:
            return json.loads(self._fernet.decrypt(sealed))
        except InvalidToken as exc:
            raise ValueError(
                "stored credential cannot be decrypted with this data dir's key"
            ) from exc
