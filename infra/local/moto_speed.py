"""Work that every test's moto stack repeated, done once a process or when first needed (about 0.26 s of CPU
a test, a fifth of the suite's).

- moto gives each ``mock_aws`` a new default boto3 session, and ``shared.aws`` makes a new botocore session
  for each test's clients: each session's loader parsed botocore's JSON data again (endpoints.json is
  1.2 MB, DynamoDB's and KMS's models about 550 KB each) and listed its 400-odd service folders. botocore's
  data files do not change while a process runs, and one session's loader already hands the same parsed
  models to all its clients, so loaders now share them across sessions too.
- moto makes an RSA key pair for every KMS key, a symmetric one too (used only by Sign, Verify and
  GetPublicKey, which the service never calls): now made when first used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import Any

import botocore.loaders
import moto.kms.models
import moto.kms.utils

_parsed: dict[str, Any] = {}
_listed: dict[tuple[tuple[str, ...], str], list[str]] = {}


class _KeyOnFirstUse(moto.kms.utils.AbstractPrivateKey):
    """A moto KMS key's private key, generated on its first use."""

    def __init__(self, generate: Callable[[], moto.kms.utils.AbstractPrivateKey]) -> None:
        self._generate = generate

    @cached_property
    def _key(self) -> moto.kms.utils.AbstractPrivateKey:
        return self._generate()

    def sign(self, message: bytes, signing_algorithm: str) -> bytes:
        return self._key.sign(message, signing_algorithm)

    def verify(self, message: bytes, signature: bytes, signing_algorithm: str) -> bool:
        return self._key.verify(message, signature, signing_algorithm)

    def public_key(self) -> bytes:
        return self._key.public_key()


@contextmanager
def set_up_once() -> Iterator[None]:
    """While open: botocore's data parsed and listed once a process, moto's key pairs made on first use."""
    load_file = botocore.loaders.JSONFileLoader.load_file
    list_services = botocore.loaders.Loader.list_available_services
    private_key = moto.kms.utils.generate_private_key

    def parsed_once(self: botocore.loaders.JSONFileLoader, file_path: str) -> Any:
        if file_path not in _parsed:
            _parsed[file_path] = load_file(self, file_path)
        return _parsed[file_path]

    def listed_once(self: botocore.loaders.Loader, type_name: str) -> list[str]:
        key = (tuple(self.search_paths), type_name)
        if key not in _listed:
            _listed[key] = list_services(self, type_name)
        return _listed[key]

    botocore.loaders.JSONFileLoader.load_file = parsed_once
    botocore.loaders.Loader.list_available_services = listed_once

    def on_first_use(key_spec: str) -> moto.kms.utils.AbstractPrivateKey:
        return _KeyOnFirstUse(lambda: private_key(key_spec))

    moto.kms.models.generate_private_key = on_first_use  # type: ignore[attr-defined]
    try:
        yield
    finally:
        botocore.loaders.JSONFileLoader.load_file = load_file
        botocore.loaders.Loader.list_available_services = list_services
        moto.kms.models.generate_private_key = private_key  # type: ignore[attr-defined]
