"""Edited plans and backups are refused (unless --force); untouched ones load whatever their layout."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from helpers import SAMPLE

from bridge.cli import main
from bridge.errors import SnapshotError
from bridge.integrity import document_digest, load_plan
from bridge.journal import Backup, BackupEntry, load_backup, write_backup

KEY = "rpa_INTEGRITYKEY0123456789ABCDEF"


@pytest.fixture(scope="module")
def plan_doc() -> dict[str, Any]:
    result = CliRunner().invoke(main, ["plan", "--from", str(SAMPLE), "--format", "json"])
    doc: dict[str, Any] = json.loads(result.output)
    assert doc["digest"].startswith("sha256:")
    return doc


def _first(doc: dict[str, Any], status: str) -> dict[str, Any]:
    return next(ep for ep in doc["endpoints"] if ep["status"] == status)


def _set_status(doc: dict[str, Any]) -> None:
    ep = _first(doc, "blocked")
    ep["status"] = "update"


EDITS: list[Callable[[dict[str, Any]], object]] = [
    lambda d: _first(d, "update")["body"].update(workersMax=100000),
    lambda d: _first(d, "update")["body"].update(env={"A": "<not the real value>"}),
    lambda d: _first(d, "update")["body"].update(unknownField=1),
    lambda d: _first(d, "update")["body"].pop(next(iter(_first(d, "update")["body"]))),
    _set_status,
    lambda d: _first(d, "update").update(fingerprint="sha256:0"),
    lambda d: d.update(generated_at="2030-01-01T00:00:00Z"),
    lambda d: d["endpoints"].pop(),
    lambda d: d["endpoints"].append(copy.deepcopy(d["endpoints"][0]) | {"id": "another"}),
    lambda d: d.update(digest="sha256:" + "0" * 64),
    lambda d: d.pop("digest"),
    lambda d: d.update(digest=None),
]


@pytest.mark.parametrize("edit", EDITS)
def test_edited_plan_is_refused_unless_forced(tmp_path: Path, plan_doc: dict[str, Any], edit: Any) -> None:
    """Any change of content after bridge wrote the plan: one line naming the file, exit 2; --force loads it."""
    doc = copy.deepcopy(plan_doc)
    edit(doc)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc, indent=2))
    with pytest.raises(
        SnapshotError, match=r"plan\.json: (edited since|no integrity digest|endpoint \w+: \w+:).*--force"
    ) as info:
        load_plan(path)
    assert info.value.exit_code == 2 and "\n" not in str(info.value)
    try:
        load_plan(path, force=True)
    except SnapshotError as exc:  # forced: only a structural problem (an unknown top-level field) may remain
        assert "digest" not in str(exc)


@pytest.mark.parametrize(
    "layout",
    [
        lambda d: json.dumps(d),
        lambda d: json.dumps(d, indent=4, sort_keys=True),
        lambda d: json.dumps(dict(reversed(list(d.items()))), ensure_ascii=True),
    ],
)
def test_untouched_plan_loads_whatever_its_layout(tmp_path: Path, plan_doc: dict[str, Any], layout: Any) -> None:
    """Reformatting (jq, an editor) changes no value: the plan still loads, without its digest."""
    path = tmp_path / "plan.json"
    path.write_text(layout(plan_doc))
    plan = load_plan(path)
    assert plan.digest is None and len(plan.endpoints) == len(plan_doc["endpoints"])


def test_cli_apply_refuses_an_edited_plan(tmp_path: Path, plan_doc: dict[str, Any]) -> None:
    """`bridge apply` on an edited plan exits 2 with one line, before any key or network is needed."""
    doc = copy.deepcopy(plan_doc)
    _first(doc, "update")["body"]["workersMax"] = 7
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    result = CliRunner().invoke(main, ["apply", str(path), "--yes"], env={"RUNPOD_API_KEY": ""})
    assert result.exit_code == 2 and "edited since bridge wrote it" in result.output


def _backup(tmp_path: Path, rest: dict[str, Any]) -> Path:
    entry = BackupEntry(id="ep1", rest=rest, body={"workersMax": 3, "name": "x"}, legacy={"id": "ep1", "aiKey": "s"})
    return write_backup(tmp_path / "backup.json", Backup("v1", "t", [entry]), secrets=[KEY])


BACKUP_EDITS: list[Callable[[dict[str, Any]], object]] = [
    lambda d: d["endpoints"][0]["body"].update(gpuTypeIds=["NVIDIA H100"]),
    lambda d: d["endpoints"][0]["rest"].update(workersMax=9),
    lambda d: d["endpoints"].append(copy.deepcopy(d["endpoints"][0]) | {"id": "ep2"}),
    lambda d: d.update(target="v2"),
    lambda d: d.pop("digest"),
    lambda d: d.update(digest=5),
]


@pytest.mark.parametrize("edit", BACKUP_EDITS)
def test_edited_backup_is_refused_unless_forced(tmp_path: Path, edit: Any) -> None:
    """An edited backup would make rollback write what the run never changed: refused unless forced."""
    path = _backup(tmp_path, {"id": "ep1", "workersMax": 1, "name": "x"})
    assert load_backup(path).entries[0].rest["workersMax"] == 1
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(SnapshotError, match=r"backup\.json: .*--force"):
        load_backup(path)
    load_backup(path, force=True)


@pytest.mark.parametrize(
    "field",
    [
        lambda k: {"args": f"python serve.py --api-key {k}"},
        lambda k: {"dockerArgs": ["--key", k[:20]]},
        lambda k: {"template": {"startCommand": f"RUNPOD_API_KEY={k} run"}},
        lambda k: {"notes": {k: "the key as an object key"}},
        lambda k: {"url": "https://x/?k=" + k.replace("_", "%5F")},
    ],
)
def test_backup_holds_no_piece_of_the_key_in_any_field(tmp_path: Path, field: Any) -> None:
    """Whatever field the key hides in, the backup file has none of it, and still loads."""
    path = _backup(tmp_path, {"id": "ep1", "workersMax": 1, **field(KEY)})
    text = path.read_text()
    for i in range(len(KEY) - 7):
        assert KEY[i : i + 8] not in text
    assert load_backup(path).entries[0].id == "ep1"


def test_journal_shows_which_fields_a_run_wrote(tmp_path: Path) -> None:
    """fields_written reads the attempt lines of a run's journal (skipping a torn last line); journal_of finds it."""
    from bridge.journal import Journal, fields_written, journal_of

    backup = tmp_path / "backup-20261130T100000.000001Z.json"
    journal = journal_of(backup)
    assert journal == tmp_path / "journal-20261130T100000.000001Z.jsonl"
    with Journal(journal) as j:
        j.record("run-start")
        j.record("attempt", endpoint="e1", attempt=1, body={"name": "a", "workersMax": 2})
        j.record("attempt", endpoint="e1", attempt=2, body={"name": "a", "flashboot": True})
        j.record("attempt", endpoint="e2", attempt=1, body={"gpuTypeIds": ["x"]})
        j.record("outcome", endpoint="e3", status="unchanged")
    with journal.open("a") as fh:
        fh.write('{"event": "attempt", "endpoint": "e3", "body": {"torn"')
    assert fields_written(journal) == {"e1": {"name", "workersMax", "flashboot"}, "e2": {"gpuTypeIds"}}
    with pytest.raises(SnapshotError, match="cannot read the run's journal"):
        fields_written(tmp_path / "missing.jsonl")
    (tmp_path / "bad.jsonl").write_text("[1, 2]\n")
    with pytest.raises(SnapshotError, match=r"bad\.jsonl: not a bridge journal"):
        fields_written(tmp_path / "bad.jsonl")


def test_a_hostile_read_with_nan_or_a_lone_surrogate_is_backed_up_and_read_back(tmp_path: Path) -> None:
    """NaN and a lone surrogate are not JSON, but a hostile REST read can hold them: the backup is still written
    before the first write, and loads back with its digest intact (the fuzzer found the ValueError)."""
    path = tmp_path / "backup.json"
    rest = {"workersMax": float("nan"), "name": "\ud800 é", "idleTimeout": float("inf")}
    write_backup(path, Backup(target="v1", created_at="x", entries=[BackupEntry(id="a", rest=rest, body={"n": 1})]))
    (entry,) = load_backup(path).entries
    assert entry.rest["name"] == "\ud800 é" and entry.rest["workersMax"] != entry.rest["workersMax"]


DUPLICATES: list[Callable[[dict[str, Any]], object]] = [
    lambda d: d["endpoints"].append(copy.deepcopy(_first(d, "update"))),  # the same entry twice
    lambda d: d["endpoints"].append(copy.deepcopy(_first(d, "update")) | {"body": {"name": "other"}}),  # two bodies
    lambda d: d["endpoints"].insert(0, copy.deepcopy(_first(d, "blocked")) | {"id": _first(d, "update")["id"]}),
]


@pytest.mark.parametrize("edit", DUPLICATES)
@pytest.mark.parametrize("force", [False, True])
def test_an_endpoint_listed_twice_is_refused_even_forced(
    tmp_path: Path, plan_doc: dict[str, Any], edit: Any, force: bool
) -> None:
    """--force lets an edited plan through, but never one endpoint twice: its two bodies would be written at once,
    and its backup would hold it twice. Refused whatever the digest (recomputed here, as a forger would)."""
    from bridge.integrity import PlanDigest
    from bridge.models import Plan

    doc = copy.deepcopy(plan_doc)
    edit(doc)
    doc["digest"] = PlanDigest.of(Plan.model_validate(doc | {"digest": None}))
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SnapshotError, match=r"plan\.json: endpoint \S+ is listed twice"):
        load_plan(path, force=force)


@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("other", [{}, {"body": {"workersMax": 9}}])
def test_a_backup_listing_an_endpoint_twice_is_refused_even_forced(
    tmp_path: Path, force: bool, other: dict[str, Any]
) -> None:
    """A rollback of a backup holding one endpoint twice would write it twice at once: refused, forced or not."""
    path = _backup(tmp_path, {"id": "ep1", "workersMax": 1, "name": "x"})
    doc = json.loads(path.read_text())
    doc["endpoints"].append(copy.deepcopy(doc["endpoints"][0]) | other)
    doc.pop("digest")
    doc["digest"] = document_digest(doc)  # as a forger would: the digest alone does not stop it
    path.write_text(json.dumps(doc))
    with pytest.raises(SnapshotError, match=r"backup\.json: endpoints\[1\]: endpoint ep1 is listed twice"):
        load_backup(path, force=force)


def test_endpoint_digest_text_is_the_canonical_json_of_its_dump() -> None:
    """The fast path (shared findings and equivalence spliced in) yields the same bytes as the plain one."""
    from bridge.integrity import _canonical, _endpoint_canonical
    from bridge.models import Change, EndpointPlan, EquivalenceResult, Finding

    same = dict.fromkeys(("gpu", "locations", "flashboot", "cpu", "scaling", "workers", "other"), "same")
    eqs: list[EquivalenceResult | None] = [
        None,
        EquivalenceResult(**same, frozen=["gpu"]),
        EquivalenceResult(**{**same, "gpu": "narrower"}, details={"gpu": "lost \u00e9"}, explained={"gpu": "x"}),
    ]
    finding = Finding(severity="info", code="c", field="f", message='\u2028 quote " and \ud83d\ude00')
    for eq in eqs:
        for findings in ([], [finding], [finding, finding.model_copy(update={"severity": "error"})]):
            ep = EndpointPlan(
                id="ep1",
                name="n\u00e9-fb" if eq else None,
                status="update",
                body={"name": "z", "gpuTypeIds": ["A", "B"], "workersMax": 2, "nested": {"b": 1, "a": [1.5]}},
                changes=[Change(field="workersMax", from_=1, to=2)],
                fingerprint=None if eq else "abc",
                findings=findings,
                equivalence=eq,
            )
            assert _endpoint_canonical(ep) == _canonical(ep.model_dump(mode="json", by_alias=True))
