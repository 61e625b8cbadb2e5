"""The one exception type that becomes a Matrix error response.

Services raise `MatrixError` (or a subclass) for anything a client did wrong;
the API layer's middleware turns it into `{"errcode": ..., "error": ...}` with
the status the spec gives. It lives at the package top so services can raise it
without importing the HTTP layer.
"""

from __future__ import annotations

from typing import Any


class MatrixError(Exception):
    def __init__(self, status: int, errcode: str, error: str, **extra: Any) -> None:
        super().__init__(f"{errcode}: {error}")
        self.status = status
        self.errcode = errcode
        self.error = error
        self.extra = extra
        self.headers: dict[str, str] = {}

    def to_json(self) -> dict[str, Any]:
        return {"errcode": self.errcode, "error": self.error, **self.extra}


def forbidden(error: str) -> MatrixError:
    return MatrixError(403, "M_FORBIDDEN", error)


def not_found(error: str) -> MatrixError:
    return MatrixError(404, "M_NOT_FOUND", error)


def bad_json(error: str) -> MatrixError:
    return MatrixError(400, "M_BAD_JSON", error)


def invalid_param(error: str) -> MatrixError:
    return MatrixError(400, "M_INVALID_PARAM", error)


def missing_param(error: str) -> MatrixError:
    return MatrixError(400, "M_MISSING_PARAM", error)


def limit_exceeded(retry_after_ms: int) -> MatrixError:
    err = MatrixError(429, "M_LIMIT_EXCEEDED", "Too many requests", retry_after_ms=retry_after_ms)
    err.headers["Retry-After"] = str(max(1, (retry_after_ms + 999) // 1000))
    return err


def unknown_token(error: str = "Unknown access token", *, soft_logout: bool = False) -> MatrixError:
    return MatrixError(401, "M_UNKNOWN_TOKEN", error, soft_logout=soft_logout)
