"""Hostile input, fuzzed with hypothesis: never a traceback or a hang, always a clear message and exit code.

Four kinds of input, each mutated from a valid one (wrong types, missing and extra fields, nulls, huge
strings, deep nesting, odd unicode) or replaced at the byte level (truncated, non-JSON, HTML error pages,
invalid UTF-8, NUL bytes):

- snapshot files (`plan --from`), override tables (`--mappings`), plan files (`apply`) and backups
  (`rollback`), through the CLI: exit 0, 3 or 4 with a report, or 2 with one line naming the file; no
  "unexpected" error, no output file left behind on failure, no temporary files;
- API answers (GraphQL and REST reads), through the live read and the plan built from it: a plan, or an
  ``ApiError`` naming the URL, never another exception;
- REST reads met by the apply engine (the re-read and the read-back): an outcome for every endpoint,
  never a crash.

``BRIDGE_FULL=1`` runs 20 times more examples and prints how many inputs were fuzzed.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from helpers import SAMPLE, offline_settings, sample_doc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.apply import WorkItem, run_items
from bridge.cli import main
from bridge.emulator import Emulator
from bridge.errors import ApiError
from bridge.http import RetryPolicy
from bridge.live import read_live_account
from bridge.plan import build_plan
from bridge.rest import open_rest
from bridge.tables import build_tables
from bridge.targets import V1

FULL = bool(os.environ.get("BRIDGE_FULL"))
SCALE = 20 if FULL else 1
KEY = "test-key-FUZZ-0123456789"
FUZZED: Counter[str] = Counter()


def examples(n: int) -> Any:
    return settings(
        max_examples=n * SCALE,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,
    )


# -- hostile values and mutations ------------------------------------------------------------------------

ODD_TEXT = st.sampled_from(
    ["", " ", "\x00", "\u202e", "\ud7ff", "é", "🔑" * 3, "a\nb", '"', "\\", "<html>", "-fb", ",", "-", "AMPERE_16,"]
)
leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    ODD_TEXT,
    st.just("x" * 200_000),
)


def deep(depth: int) -> Any:
    value: Any = "bottom"
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


hostile = st.one_of(
    leaf,
    st.lists(leaf, max_size=4),
    st.dictionaries(st.text(max_size=8), leaf, max_size=4),
    st.builds(deep, st.sampled_from([60, 3000])),  # built afresh: a later edit may walk into it
)


@st.composite
def mutated(draw: st.DrawFn, base: Any, max_edits: int = 3) -> Any:
    """``base`` with 1 to ``max_edits`` edits: a value replaced, a key or item removed, an extra field added."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, max_edits))):
        parent: Any = None
        key: Any = None
        node = doc
        while isinstance(node, (dict, list)) and node and (parent is None or draw(st.integers(0, 3)) > 0):
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            parent, key = node, draw(st.sampled_from(keys))
            node = node[key]
        op = draw(st.sampled_from(["replace", "delete", "extra"]))
        if parent is None:
            doc = draw(hostile)
        elif op == "replace":
            parent[key] = draw(hostile)
        elif op == "delete":
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(hostile)
        else:
            parent.append(draw(hostile))
    return doc


def dumps(doc: Any) -> bytes:
    try:
        return json.dumps(doc, ensure_ascii=False).encode("utf-8", errors="surrogatepass")
    except (ValueError, RecursionError):
        return b'{"deep": ' + b"[" * 5000 + b"]" * 5000 + b"}"


@st.composite
def file_bytes(draw: st.DrawFn, base: Any, mutate: bool = True) -> bytes:
    """The bytes of a file derived from ``base``: mutated JSON, or a byte-level accident."""
    text = json.dumps(base, ensure_ascii=False).encode()
    kind = draw(st.sampled_from(["mutated", "mutated", "mutated", "truncated", "html", "garbage", "bom", "nul"]))
    if kind == "mutated" and mutate:
        return dumps(draw(mutated(base)))
    if kind == "truncated":
        return text[: draw(st.integers(0, max(0, len(text) - 1)))]
    if kind == "html":
        return b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>cloudflare</body></html>"
    if kind == "garbage":
        return draw(st.binary(max_size=300))
    if kind == "bom":
        return b"\xef\xbb\xbf" + text
    return text[:50] + b"\x00" + text[50:]


# -- the CLI over hostile files ------------------------------------------------------------------------------


def cli(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> Any:
    runner = CliRunner()
    return runner.invoke(main, args, env=env or {"RUNPOD_API_KEY": ""}, catch_exceptions=True)


def assert_clean_exit(result: Any, allowed: set[int], names: str) -> None:
    """Exit code in ``allowed``; on 2, one stderr line naming the file; never an unexpected error."""
    assert not (result.exception and not isinstance(result.exception, SystemExit)), repr(result.exception)
    assert result.exit_code in allowed, (result.exit_code, result.stderr[-500:])
    assert "error: unexpected" not in result.stderr and "Traceback" not in result.stderr, result.stderr[-500:]
    if result.exit_code == 2:
        errors = [line for line in result.stderr.splitlines() if line.startswith("bridge: error:")]
        assert len(errors) == 1 and names in errors[0], result.stderr[-500:]
        assert len(errors[0]) < 1200, len(errors[0])


def no_leftovers(root: Path, *outputs: Path) -> None:
    assert not [p for p in root.rglob("*.tmp")], "temporary files left behind"
    for out in outputs:
        assert not out.exists() or (out.is_dir() and not any(out.iterdir())), f"{out} written on failure"


@examples(120)
@given(data=file_bytes(sample_doc()))
def test_fuzzed_snapshots(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    """`plan --from` a hostile snapshot: a report (exit 0/3) or one line naming the file (exit 2)."""
    FUZZED["snapshots"] += 1
    tmp = tmp_path_factory.mktemp("snap")
    path = tmp / "snap.json"
    path.write_bytes(data)
    out = tmp / "report.txt"
    result = cli(["plan", "--from", str(path), "-o", str(out)], tmp)
    assert_clean_exit(result, {0, 2, 3}, str(path))
    if result.exit_code == 2:
        no_leftovers(tmp, out)
        exported = cli(["export", "--from", str(path), "--out", str(tmp / "exp")], tmp)
        assert_clean_exit(exported, {2}, str(path))
        no_leftovers(tmp, tmp / "exp")


OVERRIDE = {
    "pools": {"AMPERE_16": ["NVIDIA RTX A4000", "NVIDIA RTX 4000 Ada Generation"]},
    "locations": {"GB": ["EU-NL-1"], "EU": ["EU-RO-1", "EU-CZ-1"]},
}


def toml_text(doc: Any) -> str:
    """A best-effort TOML rendering of a mutated override (invalid TOML is part of the fuzz)."""
    if not isinstance(doc, dict):
        return json.dumps(doc, default=str)[:5000]
    lines = []
    for table, entries in doc.items():
        lines.append(f"[{table}]")
        if isinstance(entries, dict):
            for key, value in entries.items():
                lines.append(f"{json.dumps(str(key))} = {json.dumps(value, default=str)[:5000]}")
        else:
            lines.append(f"value = {json.dumps(entries, default=str)[:5000]}")
    return "\n".join(lines)


@examples(100)
@given(doc=mutated(OVERRIDE), raw=st.one_of(st.none(), st.binary(max_size=200)))
def test_fuzzed_override_tables(tmp_path_factory: pytest.TempPathFactory, doc: Any, raw: bytes | None) -> None:
    """`--mappings` with a hostile override file: a report, or one line naming the file (exit 2)."""
    FUZZED["override tables"] += 1
    tmp = tmp_path_factory.mktemp("table")
    path = tmp / "over.toml"
    try:
        path.write_bytes(raw if raw is not None else toml_text(doc).encode("utf-8", errors="surrogatepass"))
    except RecursionError:
        return
    result = cli(["plan", "--from", str(SAMPLE), "--mappings", str(path)], tmp)
    assert_clean_exit(result, {0, 2, 3}, str(path))


def exported_plan() -> dict[str, Any]:
    """The plan.json `export` writes for the sample account."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        CliRunner().invoke(main, ["export", "--from", str(SAMPLE), "--out", f"{tmp}/exp"], catch_exceptions=False)
        return json.loads(Path(f"{tmp}/exp/plan.json").read_text())  # type: ignore[no-any-return]


PLAN = exported_plan()


@pytest.fixture(scope="module")
def emu() -> Any:
    """One emulator for the module: plans and backups that load are really applied to it."""
    with Emulator(SAMPLE, api_key=KEY) as emulator:
        yield emulator


def emu_env(emulator: Emulator) -> dict[str, str]:
    return {**emulator.env, "RUNPOD_API_KEY": KEY}


@examples(100)
@given(data=file_bytes(PLAN))
def test_fuzzed_plan_files(tmp_path_factory: pytest.TempPathFactory, emu: Emulator, data: bytes) -> None:
    """`apply` with a hostile plan file: one line naming the file (exit 2), or it runs against the emulator."""
    FUZZED["plan files"] += 1
    tmp = tmp_path_factory.mktemp("plan")
    path = tmp / "plan.json"
    path.write_bytes(data)
    result = cli(["apply", str(path), "--yes", "--state-dir", str(tmp / "state")], tmp, emu_env(emu))
    assert_clean_exit(result, {0, 1, 2, 3}, str(path))
    if result.exit_code == 2:
        no_leftovers(tmp, tmp / "state")
    assert not list(tmp.rglob("*.tmp"))


def sample_backup() -> dict[str, Any]:
    return {
        "format": "bridge-backup",
        "format_version": 1,
        "target": "v1",
        "created_at": "20261124T000000Z",
        "endpoints": [
            {
                "id": "i02xupws21hp6i",
                "legacy": None,
                "rest": {"id": "i02xupws21hp6i", "name": "a", "workersMax": 3, "gpuTypeIds": ["NVIDIA A40"]},
                "body": {"name": "b", "workersMax": 2, "gpuTypeIds": ["NVIDIA RTX A4000"]},
            }
        ],
    }


@examples(60)
@given(data=file_bytes(sample_backup()))
def test_fuzzed_backups(tmp_path_factory: pytest.TempPathFactory, emu: Emulator, data: bytes) -> None:
    """`rollback` with a hostile backup: one line naming the file (exit 2), or it runs against the emulator."""
    FUZZED["backups"] += 1
    tmp = tmp_path_factory.mktemp("backup")
    path = tmp / "backup.json"
    path.write_bytes(data)
    result = cli(["rollback", str(path), "--yes", "--state-dir", str(tmp / "state")], tmp, emu_env(emu))
    assert_clean_exit(result, {0, 1, 2, 3}, str(path))
    if result.exit_code == 2:
        no_leftovers(tmp, tmp / "state")


# -- hostile API answers ----------------------------------------------------------------------------------

SETTINGS = offline_settings(KEY, concurrency=4)


async def _no_sleep(_: float) -> None:
    await asyncio.sleep(0)


def fast() -> RetryPolicy:
    return RetryPolicy(sleep=_no_sleep, clock=lambda: 0.0, rng=random.Random(1))


def api_answers() -> dict[str, Any]:
    """What a healthy RunPod answers for the sample account: GraphQL list and pools, REST list and reads."""
    emu = Emulator(SAMPLE)
    doc = sample_doc()
    records = list(emu.account.copy_records().values())
    views = [emu.account.v1_view(r) for r in records]
    return {
        "endpoints": {"data": {"myself": {"endpoints": doc["data"]["myself"]["endpoints"]}}},
        "pools": {"data": {"serverlessGpuPools": doc["data"]["serverlessGpuPools"]}},
        "list": views,
        "get": {v["id"]: v for v in views},
    }


ANSWERS = api_answers()
WHICH = ["endpoints", "pools", "list", "get"]


def mock(answers: dict[str, Any], raw: dict[str, bytes]) -> Callable[[httpx.Request], httpx.Response]:
    """A RunPod answering from ``answers`` (JSON) or ``raw`` (bytes, for byte-level accidents)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "gql.test":
            query = json.loads(request.content).get("query", "")
            name = "pools" if "serverlessGpuPools" in query else "endpoints"
        elif request.url.path.endswith("/endpoints"):
            name = "list"
        else:
            name = "get"
        if name in raw:
            return httpx.Response(200, content=raw[name])
        answer = answers[name]
        if name == "get":
            endpoint_id = request.url.path.rsplit("/", 1)[-1]
            answer = answer.get(endpoint_id, {"error": "not found"}) if isinstance(answer, dict) else answer
        return httpx.Response(200, content=dumps(answer))

    return handler


@examples(150)
@given(data=st.data(), which=st.sampled_from(WHICH), byte_level=st.booleans())
def test_fuzzed_api_answers_to_reads(data: st.DataObject, which: str, byte_level: bool) -> None:
    """A hostile GraphQL or REST answer ends the live read with an ApiError naming the URL, or plans fine."""
    FUZZED["API answers"] += 1
    answers = dict(ANSWERS)
    raw: dict[str, bytes] = {}
    if byte_level:
        raw[which] = data.draw(file_bytes(ANSWERS[which], mutate=False))
    else:
        answers[which] = data.draw(mutated(ANSWERS[which]))
    try:
        live = read_live_account(SETTINGS, transport=httpx.MockTransport(mock(answers, raw)), policy=fast())
    except ApiError as exc:
        message = str(exc)
        assert "\n" not in message and len(message) < 1500 and KEY not in message, message[:300]
        assert ".test/" in message, message[:300]
        return
    tables = build_tables(pools=live.pools, pool_source="live") if live.pools is not None else build_tables()
    plan = build_plan(live.endpoints, tables, rest_state=live.rest_state, extra_findings=live.extra_findings)
    assert len(plan.endpoints) == len(live.endpoints)


@examples(100)
@given(state=mutated(ANSWERS["get"]["i02xupws21hp6i"]), after=st.booleans())
def test_fuzzed_reads_in_the_apply_engine(tmp_path_factory: pytest.TempPathFactory, state: Any, after: bool) -> None:
    """A hostile REST read before or after a write gives that endpoint an outcome; the engine never crashes."""
    FUZZED["engine reads"] += 1
    tmp = tmp_path_factory.mktemp("engine")
    good = dict(ANSWERS["get"]["i02xupws21hp6i"])
    written = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            written["n"] += 1
            return httpx.Response(200, json=good)
        hostile_now = written["n"] > 0 if after else True
        return httpx.Response(200, content=dumps(state if hostile_now else good))

    item = WorkItem(id="i02xupws21hp6i", body={"name": "renamed", "workersMax": 3, "gpuTypeIds": ["NVIDIA A40"]})

    async def go() -> Any:
        async with open_rest(SETTINGS, "v1", policy=fast(), transport=httpx.MockTransport(handler)) as rest:
            return await run_items(rest, V1, [item], state_dir=tmp, secrets=[KEY], sleep=_no_sleep)

    result = asyncio.run(go())
    (outcome,) = result.outcomes
    assert outcome.status in ("updated", "unchanged", "failed", "stale"), outcome
    assert written["n"] <= 3 and "\n" not in outcome.detail


def test_print_fuzz_figures() -> None:
    """Report how many inputs the module fuzzed (read by the README's figures in the full mode)."""
    if FULL:
        print(f"\nfuzz: {sum(FUZZED.values())} inputs: " + ", ".join(f"{n} {k}" for k, n in sorted(FUZZED.items())))
    assert sum(FUZZED.values()) >= 0


# -- regressions the fuzzers found, pinned ---------------------------------------------------------------


def live_read(answers: dict[str, Any], raw: dict[str, bytes] | None = None) -> Any:
    return read_live_account(SETTINGS, transport=httpx.MockTransport(mock(answers, raw or {})), policy=fast())


def test_json_nested_past_the_recursion_limit_is_an_api_error() -> None:
    """An answer nested 5,000 deep is "nested too deeply to read" naming the URL, not a RecursionError."""
    with pytest.raises(ApiError, match=r"GET https://rest.test/v1/endpoints: .*nested too deeply"):
        live_read(ANSWERS, {"list": b"[" * 5000 + b"]" * 5000})


@pytest.mark.parametrize("answer", [{"data": None}, {"errors": None, "data": None}, {"errors": "boom"}])
def test_graphql_answer_without_data_is_an_api_error(answer: dict[str, Any]) -> None:
    """A GraphQL answer with data null (and no error list) is "not a GraphQL answer", not gql's AssertionError."""
    with pytest.raises(ApiError, match=r"POST https://gql.test/graphql"):
        live_read({**ANSWERS, "endpoints": answer})


def test_invalid_live_pool_ids_fall_back_to_the_bundled_table() -> None:
    """A live pool table with an invalid pool id is set aside with a note, not an input error (exit 2)."""
    pools = {"data": {"serverlessGpuPools": [{"id": "", "gpuTypeIds": ["NVIDIA A40"]}]}}
    live = live_read({**ANSWERS, "pools": pools})
    assert live.pools is None and any("serverlessGpuPools" in note and "next source" in note for note in live.notes)


def test_rest_read_with_nested_lists_is_compared_not_crashed() -> None:
    """A REST read whose set field holds lists is simply different from the body (no TypeError in diff)."""
    from bridge.targets.base import diff

    changes = diff({"gpuTypeIds": ["NVIDIA A40"]}, {"gpuTypeIds": [["NVIDIA A40"], {"a": 1}]}, V1.set_fields)
    assert [c.field for c in changes] == ["gpuTypeIds"]


@pytest.mark.parametrize(
    "endpoints",
    ["true", "{}", '"x"', '[{"id": "a", "rest": {}, "body": {}, "legacy": 5}]'],
    ids=["bool", "obj", "str", "legacy"],
)
def test_backup_with_odd_endpoints_is_an_input_error(tmp_path: Path, endpoints: str) -> None:
    """A backup whose endpoints (or an entry's legacy) has the wrong type is one line naming the file, exit 2."""
    from bridge.errors import SnapshotError
    from bridge.journal import load_backup

    path = tmp_path / "backup.json"
    path.write_text('{"format": "bridge-backup", "target": "v1", "endpoints": ' + endpoints + "}")
    with pytest.raises(SnapshotError, match=str(path)):
        load_backup(path)


def test_failed_rest_listing_is_retrieved_when_graphql_fails_first(caplog: pytest.LogCaptureFixture) -> None:
    """When the GraphQL read fails, the REST listing's own failure is collected, not left "never retrieved"."""
    import gc

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "gql.test":
            await asyncio.sleep(0.05)  # the REST listing has failed by now
            return httpx.Response(401, json={"errors": [{"message": "unauthorized"}]})
        return httpx.Response(404, json={"error": "no such path"})

    with pytest.raises(ApiError):
        read_live_account(SETTINGS, transport=httpx.MockTransport(handler), policy=fast())
    gc.collect()
    assert "never retrieved" not in caplog.text


def test_export_with_an_unsafe_endpoint_id_writes_nothing(tmp_path: Path) -> None:
    """An endpoint id that cannot be a file name stops `export` before any body file is written."""
    doc = sample_doc()
    doc["data"]["myself"]["endpoints"][-1]["id"] = "../evil"
    snap = tmp_path / "snap.json"
    snap.write_text(json.dumps(doc))
    result = cli(["export", "--from", str(snap), "--out", str(tmp_path / "exp")], tmp_path)
    assert_clean_exit(result, {2}, "../evil")
    no_leftovers(tmp_path, tmp_path / "exp")


@pytest.mark.parametrize("target", [[], {}, 1, None, "v3", ["v1"]])
def test_backup_target_of_any_type_is_one_input_error(tmp_path: Path, target: object) -> None:
    """A backup whose target is not a known name (a list, an object, a number) is an input error naming the file."""
    from bridge.errors import SnapshotError
    from bridge.journal import load_backup

    path = tmp_path / "backup.json"
    from bridge.integrity import DIGEST_FIELD, document_digest

    doc: dict[str, object] = {"format": "bridge-backup", "format_version": 1, "target": target, "created_at": "x"}
    doc["endpoints"] = []
    doc[DIGEST_FIELD] = document_digest(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(SnapshotError, match=r"backup\.json: target"):
        load_backup(path)
