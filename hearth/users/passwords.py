"""argon2id password hashing, off the event loop.

Hashing costs tens of milliseconds of CPU by design, so it runs in a small
thread pool (argon2-cffi releases the GIL) and never blocks other requests.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

from hearth.config import Argon2Config


class PasswordHasher:
    def __init__(self, config: Argon2Config) -> None:
        self._hasher = argon2.PasswordHasher(
            time_cost=config.time_cost, memory_cost=config.memory_cost_kib,
            parallelism=config.parallelism, type=argon2.Type.ID,
        )
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="argon2")

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        if not password_hash:
            return False
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, self._verify, password_hash, password)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return bool(self._hasher.verify(password_hash, password))
        except (VerificationError, InvalidHashError):
            return False

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
