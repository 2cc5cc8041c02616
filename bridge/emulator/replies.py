"""The emulator's answers: a reply record, the error body each API uses, JSON bodies and v2 list cursors."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

PROBLEM = "application/problem+json"
JSON = "application/json"

PROBLEM_TITLES = {status.value: status.phrase for status in HTTPStatus}


@dataclass
class Reply:
    status: int
    body: Any = None
    content_type: str = JSON
    headers: list[tuple[str, str]] = field(default_factory=list)
    write: bool = False  # an applied write: drop_every counts it
    drop: bool = False


def v1_error(status: int, message: str) -> Reply:
    return Reply(status, {"error": message, "status": status})


def problem(status: int, detail: str, errors: Sequence[str] | None = None) -> Reply:
    body: dict[str, Any] = {"title": PROBLEM_TITLES.get(status, "Error"), "status": status, "detail": detail}
    if errors:
        body["errors"] = list(errors)
    return Reply(status, body, PROBLEM)


def gql_error(status: int, message: str, code: str) -> Reply:
    return Reply(status, {"errors": [{"message": message, "extensions": {"code": code}}]})


def error_reply(api: str, status: int, message: str, code: str) -> Reply:
    if api == "v1":
        return v1_error(status, message)
    if api == "v2":
        return problem(status, message)
    return gql_error(status, message, code)


def json_body(raw: bytes) -> tuple[bool, Any]:
    try:
        return True, json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, ValueError):
        return False, None


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    prefix, _, number = text.partition(":")
    if prefix != "offset" or not number.isdigit():
        return None
    return int(number)
