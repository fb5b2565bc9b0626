"""The errors a service refuses an operation with; the API maps them to problem documents in
one place (api/errors.py), the CLI prints them."""

from __future__ import annotations


class ServiceError(Exception):
    """An operation refused, with a stable `code` (and the `param` at fault, if any)."""

    def __init__(self, code: str, detail: str, *, param: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.param = param


class NotFoundError(ServiceError):
    """The object does not exist (or belongs to another tenant)."""


class InvalidRequestError(ServiceError):
    """The request names something unusable (an unknown account, the wrong currency)."""


class ConflictError(ServiceError):
    """The object is not in a state that allows the operation."""


class ForbiddenError(ServiceError):
    """This actor may not do this (four-eyes)."""
