"""The development identity provider's signing key, kept in the data dir and served as JWKS."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from ..private_files import private_folder, publish_private_file_once, tighten_file

__all__ = ["DevelopmentKeys"]


class DevelopmentKeys:
    """An RSA key pair created on first use at ``<data_dir>/keys/signing-key.pem`` (folder
    0700, file 0600, tightened when found more open)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "keys" / "signing-key.pem"
        self.private_key = self._load_or_create()
        self.public_key = self.private_key.public_key()
        public_der = self.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        digest = hashlib.sha256(public_der).digest()
        self.kid = base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()

    def _load_or_create(self) -> rsa.RSAPrivateKey:
        private_folder(self.path.parent)
        if self.path.exists():
            tighten_file(self.path)
            key = serialization.load_pem_private_key(self.path.read_bytes(), password=None)
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError(f"{self.path} does not hold an RSA private key")
            return key
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        if publish_private_file_once(self.path, pem) != pem:
            return self._load_or_create()
        return key

    def jwks(self) -> dict[str, Any]:
        """The public key as a JSON Web Key Set."""
        jwk = json.loads(RSAAlgorithm.to_jwk(self.public_key))
        jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return {"keys": [jwk]}
