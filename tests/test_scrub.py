"""The key scrubber and safe_message: the key, any long piece of it and its escaped forms never survive."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote

import pytest

from bridge.redact import MIN_FRAGMENT, REDACTED, Scrubber, escape_control, redact_text, safe_message

KEYS = [
    "rpa_8Q2XK7Z0M4N1P6R3T5V9W2Y4A6C8E0G1J3L5",
    'k"ey\\with/quotes and spaces+plus&amp=1',
    "short-key-0",  # just over the fragment length
]


def _leaks(text: str, key: str) -> list[str]:
    """Every piece of ``key`` of MIN_FRAGMENT characters that ``text`` still holds."""
    return [key[i : i + MIN_FRAGMENT] for i in range(len(key) - MIN_FRAGMENT + 1) if key[i : i + MIN_FRAGMENT] in text]


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize(
    "wrap",
    [
        lambda k: f"--api-key {k} --other",
        lambda k: f"prefix{k}suffix",
        lambda k: f"{k[:20]}",
        lambda k: f"half: {k[len(k) // 2 :]}!",
        lambda k: f"middle {k[3 : 3 + MIN_FRAGMENT]} end",
        lambda k: f"two {k[:12]} and {k[-12:]}",
        lambda k: f"url https://x/?token={quote(k, safe='')}",
        lambda k: quote_plus(k),
        lambda k: re.sub("%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(k, safe="")),
        lambda k: json.dumps({"args": k}),
        lambda k: json.dumps({"args": k}, ensure_ascii=False)[5:-1],
        lambda k: k * 3,
    ],
)
def test_scrubber_removes_every_long_piece(key: str, wrap: object) -> None:
    """Whatever wraps the key (argv, URL, JSON, a cut), no MIN_FRAGMENT-long piece of it survives."""
    text = wrap(key)  # type: ignore[operator]
    out = Scrubber([key])(text)
    assert (REDACTED in out) == bool(_leaks(text, key) or _leaks(unquote(text), key))
    assert not _leaks(out, key)
    assert not _leaks(unquote(out), key)


def test_scrubber_keeps_ordinary_text_and_short_pieces() -> None:
    """Text without the key is returned unchanged; a piece shorter than the minimum is not a leak to scrub."""
    key = KEYS[0]
    scrub = Scrubber([key])
    text = "endpoint anywhere000016 at 2026-11-30T10:00:00Z " + key[: MIN_FRAGMENT - 1]
    assert scrub(text) == text
    assert Scrubber([])("anything") == "anything"
    assert not Scrubber([None, ""])


def test_scrubber_joins_adjacent_pieces_and_walks_values() -> None:
    """A key repeated back to back is one marker; values are walked, object keys included."""
    key = KEYS[0]
    scrub = Scrubber([key])
    assert scrub(key + key) == REDACTED
    doc = {"a": [1, None, {"args": ["--k", key[5:30]], key: "v"}], "b": 2.5}
    assert scrub.value(doc) == {"a": [1, None, {"args": ["--k", REDACTED], REDACTED: "v"}], "b": 2.5}


def test_scrubber_large_document() -> None:
    """A 10 MB document with the key planted in a few places is scrubbed whole."""
    key = KEYS[0]
    items = [
        {"id": f"ep{i}", "args": f"run --n {i}" + (f" --key {key[i % 20 :]}" if i % 9999 == 0 else "")}
        for i in range(60000)
    ]
    text = json.dumps(items)
    out = Scrubber([key])(text)
    assert not _leaks(out, key)
    assert out.count(REDACTED) == len([i for i in range(60000) if i % 9999 == 0])


def test_redact_text_now_scrubs_pieces() -> None:
    """redact_text, used by every message, also removes a key cut short."""
    key = KEYS[0]
    assert not _leaks(redact_text(f"id {key[:25]}…", [key]), key)


@pytest.mark.parametrize(
    "raw",
    [
        lambda k: ('{"detail": "' + "".join(f"\\u{ord(c):04x}" for c in k) + '"}').encode(),
        lambda k: ("x" * 280 + k).encode(),  # a clip would have cut it
        lambda k: ("x" * 250 + quote(k, safe="")).encode(),
        lambda k: b"\xff\xfe not utf-8 " + k.encode() + b" \xc3",
        lambda k: json.dumps({"id": k}),
        lambda k: ("y" * 295 + k[:40]).encode(),
    ],
)
@pytest.mark.parametrize("key", KEYS[:2])
def test_safe_message_scrubs_before_clipping(raw: object, key: str) -> None:
    """Escaped, percent-encoded, non-UTF-8 or long answers: the printed line holds no piece of the key."""
    for limit in (20, 60, 300):
        line = safe_message(raw(key), [key], limit)  # type: ignore[operator]
        assert len(line) <= limit
        assert not _leaks(line, key)
        assert "\n" not in line


def test_safe_message_escapes_terminal_sequences() -> None:
    """ESC, CSI (C1), BEL, bidi overrides and newlines come out as visible escapes."""
    line = safe_message(b"title \x1b]0;owned\x07 red \x1b[31m c1 \xc2\x9b2J rtl \xe2\x80\xae end\nnext", [], 300)
    assert "\x1b" not in line and "\x07" not in line and "\x9b" not in line and "\u202e" not in line
    assert "\\x1b]0;owned\\x07" in line and "\\u202e" in line and "\\x0a" in line
    assert escape_control("a\x1bb\nc", keep_newlines=True) == "a\\x1bb\nc"
    assert escape_control("plain – ü 日本") == "plain – ü 日本"


def test_a_run_keeps_the_key_out_of_backup_and_journal(tmp_path: object) -> None:
    """The key in REST fields bridge does not redact by name (args, a start command, an error) stays out of
    every state file of a run, whatever its piece or encoding."""
    import asyncio
    from pathlib import Path

    from bridge.apply import WorkItem, run_items
    from bridge.targets import get_target

    key = KEYS[0]
    state: dict[str, Any] = {
        "id": "ep1",
        "name": "old",
        "args": f"python serve.py --api-key {key}",
        "dockerStartCmd": ["--token", key[4:30]],
        "template": {"startCommand": "curl -H 'x: " + quote(key, safe="") + "'"},
    }

    class Api:
        async def list_endpoints(self) -> list[dict[str, Any]]:
            return [dict(state)]

        async def get_endpoint(self, endpoint_id: str) -> dict[str, Any]:
            return dict(state)

        async def send_update(self, endpoint_id: str, body: Any) -> dict[str, Any]:
            state.update(body)
            return dict(state)

    item = WorkItem(id="ep1", body={"name": f"new {key[:12]}"})
    result = asyncio.run(
        run_items(Api(), get_target("v1"), [item], state_dir=Path(str(tmp_path)), secrets=[key])  # type: ignore[arg-type]
    )
    assert result.backup_path is not None
    for path in Path(str(tmp_path)).iterdir():
        text = path.read_text()
        assert not _leaks(text, key) and not _leaks(unquote(text), key), path
    assert REDACTED in result.backup_path.read_text()


def test_scrubbed_json_stays_json() -> None:
    """Scrubbing the text of a JSON document (a report, a snapshot) never cuts a quote or an escape: any piece
    of a key holding quotes and backslashes, raw or escaped, anywhere in a string, leaves valid JSON."""
    import random

    key = 'rpa_W15+k/y"q\\z0123456789ABCDEFGHIJKLMNOP'
    scrub = Scrubber([key])
    rng = random.Random(7)
    for _ in range(800):
        a = rng.randrange(len(key))
        b = rng.randrange(a, len(key) + 1)
        doc = {"x": f"pre {key[a:b]} é", "y": [key, "q" + key[a:], key[:b]], key[a:b]: json.dumps(key)[a:b]}
        for ensure_ascii in (True, False):
            text = json.dumps(doc, ensure_ascii=ensure_ascii, indent=rng.choice([None, 2]))
            out = json.loads(scrub(text))
            assert key not in json.dumps(out, ensure_ascii=False)


def test_secret_scope_reaches_files_and_cli_streams(tmp_path: Path) -> None:
    """A key noted by Settings inside a scope is scrubbed from write_private and the CLI's streams, line by
    line and across writes; outside the scope nothing is held back or changed."""
    import io

    from bridge.cli._scrub import ScrubbedStream
    from bridge.config import Settings
    from bridge.files import write_private
    from bridge.redact import scope_secrets, secret_scope

    key = KEYS[0]
    sink = io.StringIO()
    stream = ScrubbedStream(sink)  # type: ignore[arg-type]
    stream.write("before any key\n")
    assert sink.getvalue() == "before any key\n"  # nothing held back without a secret
    with secret_scope():
        Settings(api_key=key)
        assert scope_secrets() == (key,)
        stream.write(f"half {key[:15]}")
        stream.write(f"{key[15:]} end\nnext {quote(key, safe='')}")
        stream.flush()
        write_private(tmp_path / "out.txt", f"a {key} b\n")
    assert scope_secrets() == ()
    assert not _leaks(sink.getvalue(), key) and not _leaks((tmp_path / "out.txt").read_text(), key)
    assert sink.getvalue().count(REDACTED) == 2
    Settings(api_key=key)  # outside a scope: nothing noted
    write_private(tmp_path / "plain.txt", f"{key}\n")
    assert (tmp_path / "plain.txt").read_text() == f"{key}\n"


def test_scrubbed_stream_is_a_text_stream() -> None:
    """Like any text stream it refuses bytes: click probes a stream with write(b"") to tell text from binary."""
    import io

    from bridge.cli._scrub import ScrubbedStream

    with pytest.raises(TypeError):
        ScrubbedStream(io.StringIO()).write(b"")  # type: ignore[arg-type]


def test_the_fast_path_of_a_document_scrub_finds_what_the_walk_finds() -> None:
    """A document is searched as one JSON text before its strings are walked: whatever the walk would scrub (a
    key or any 8-character piece of it, in a value or an object key, nested), the fast path never skips."""
    import random

    key = "rpa_0123456789ABCDEFGHIJKLMNOPQRSTUV"
    fast = Scrubber([key])
    slow = Scrubber([key])
    slow._plain = False  # the walk alone
    rng = random.Random(3)
    for _ in range(300):
        a = rng.randrange(len(key) - 8)
        piece = key[a : rng.randrange(a + 8, len(key) + 1)]
        doc: Any = {"endpoints": [{"id": "ep", "env": {"K": "v"}, "args": "x"} for _ in range(3)]}
        where = rng.choice(["value", "key", "none", "list"])
        if where == "value":
            doc["endpoints"][rng.randrange(3)]["args"] = f"--token é {piece} end"
        elif where == "key":
            doc["endpoints"][rng.randrange(3)]["env"][piece] = "v"
        elif where == "list":
            doc["endpoints"].append([1, None, f"\n{piece}\t"])
        assert fast.value(doc) == slow.value(doc)
        assert (fast.value(doc) is doc) == (where == "none")
    odd = {("a", "b"): f"x {key}"}  # not JSON-shaped: no fast path, the walk still scrubs
    assert fast.value(odd) == {("a", "b"): f"x {REDACTED}"}
