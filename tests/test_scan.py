"""bridge scan: each form it reads, what it must not report, the walk, the formats and the command.

Golden outputs: fixtures/golden/scan/. Regenerate with: BRIDGE_UPDATE_GOLDEN=1 pytest tests/test_scan.py
"""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner
from helpers import FIXTURES, ROOT

import bridge
from bridge.cli import main
from bridge.scan import ScanFinding, ScanResult, render_scan, scan

TREE = FIXTURES / "scan"
GOLDEN = FIXTURES / "golden" / "scan"
SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"
SUFFIX = {"text": "txt", "json": "json", "markdown": "md", "sarif": "sarif"}


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["scan", *args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def scan_text(tmp_path: Path, name: str, text: str, **kwargs: Any) -> list[ScanFinding]:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return scan([path], bridge.build_tables(), **kwargs).findings


def one(findings: list[ScanFinding]) -> ScanFinding:
    assert len(findings) == 1, [(f.path, f.line, f.legacy) for f in findings]
    return findings[0]


@pytest.fixture(scope="module")
def tree_result() -> ScanResult:
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        return scan(["fixtures/scan"], bridge.build_tables())
    finally:
        os.chdir(cwd)


# --- the fixture tree, whole --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(SUFFIX))
def test_golden_outputs(fmt: str, tree_result: ScanResult, tmp_path: Path) -> None:
    """Every format of the fixture tree's scan matches its golden file, byte for byte."""
    out = tmp_path / "out"
    with out.open("w", encoding="utf-8") as fh:
        render_scan(tree_result, fh, fmt)
    golden = GOLDEN / f"scan.{SUFFIX[fmt]}"
    if os.environ.get("BRIDGE_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(out.read_text(encoding="utf-8"), encoding="utf-8")
    assert out.read_text(encoding="utf-8") == golden.read_text(encoding="utf-8")


def test_tree_locations(tree_result: ScanResult) -> None:
    """Each form in the tree is found at its line, and nothing in ignored, binary or prose-only files."""
    where = {(f.path.removeprefix("fixtures/scan/"), f.line) for f in tree_result.findings}
    assert where == {
        ("docs/guide.md", 8),
        ("graphql/save_endpoint.graphql", 3),
        ("graphql/save_endpoint.graphql", 21),
        ("hub/.runpod/hub.json", 9),
        ("js/deploy.ts", 8),
        ("js/deploy.ts", 17),
        ("js/deploy.ts", 24),
        ("python/deploy.py", 15),
        ("python/deploy.py", 30),
        ("python/deploy.py", 38),
        ("python/deploy.py", 43),
        ("python/deploy.py", 47),
        ("python/deploy.py", 48),
        ("python/deploy.py", 52),
        ("python/deploy.py", 60),
        ("python/deploy.py", 61),
        ("shell/deploy.sh", 8),
        ("shell/deploy.sh", 12),
        ("shell/deploy.sh", 17),
        ("templates/endpoints.yaml", 4),
        ("templates/endpoints.yaml", 8),
    }
    assert [u.path for u in tree_result.unreadable] == ["fixtures/scan/templates/broken.json"]


def test_sarif_validates_against_the_official_schema(tree_result: ScanResult, tmp_path: Path) -> None:
    """--format sarif is valid SARIF 2.1.0; every result names a rule of the driver and a location."""
    out = tmp_path / "scan.sarif"
    with out.open("w") as fh:
        render_scan(tree_result, fh, "sarif")
    log = json.loads(out.read_text())
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft4Validator.check_schema(schema)
    jsonschema.Draft4Validator(schema).validate(log)
    run_ = log["runs"][0]
    rules = [r["id"] for r in run_["tool"]["driver"]["rules"]]
    assert len(rules) == len(set(rules))
    for res in run_["results"]:
        assert rules[res["ruleIndex"]] == res["ruleId"]
        region = res["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1 and region["startColumn"] >= 1
    main_results = [r for r in run_["results"] if r["ruleId"].startswith("legacy-")]
    assert len(main_results) == len(tree_result.findings)
    assert any("Replace with REST v2 PATCH /v2/serverless/abc123" in r["message"]["text"] for r in main_results)
    assert "not-static" in rules  # translation findings are results with their own rule ids too
    broken = run_["invocations"][0]["toolExecutionNotifications"]
    assert any("broken.json" in n["message"]["text"] for n in broken)


def test_sarif_schema_rejects_a_broken_log(tree_result: ScanResult, tmp_path: Path) -> None:
    """The schema check can fail: a result without a message is not SARIF."""
    out = tmp_path / "scan.sarif"
    with out.open("w") as fh:
        render_scan(tree_result, fh, "sarif")
    log = json.loads(out.read_text())
    del log["runs"][0]["results"][0]["message"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(json.loads(SCHEMA.read_text())).validate(log)


def test_secrets_in_config_are_never_read(tree_result: ScanResult, tmp_path: Path) -> None:
    """hub.json's env values do not reach any output."""
    for fmt in SUFFIX:
        out = tmp_path / fmt
        with out.open("w") as fh:
            render_scan(tree_result, fh, fmt)
        assert "hf_secret_value_never_read" not in out.read_text()


def test_translation_is_the_live_translation(tree_result: ScanResult) -> None:
    """A finding's bodies are what build_plan makes of the same legacy values for a live endpoint."""
    for finding in tree_result.findings:
        ep = bridge.LegacyEndpoint(id="x", **finding.legacy)
        for target, rep in (("v1", finding.v1), ("v2", finding.v2)):
            plan = bridge.build_plan([ep], bridge.build_tables(), target=target).endpoints[0]
            assert rep.body == plan.body, (finding.path, finding.line, target)


# --- GraphQL documents -----------------------------------------------------------------------------------


def test_graphql_file_values_and_query_ignored(tmp_path: Path) -> None:
    found = scan_text(
        tmp_path,
        "a.graphql",
        """
        query { myself { endpoints { gpuIds locations } } }
        mutation { saveEndpoint(input: {id: "ep1", gpuIds: "AMPERE_16,-NVIDIA RTX A4000", locations: "RO"}) { id } }
        """,
    )
    f = one(found)
    assert (f.line, f.column) == (3, 12)
    assert f.legacy == {"gpuIds": "AMPERE_16,-NVIDIA RTX A4000", "locations": "RO"}
    assert (f.v2.method, f.v2.path) == ("PATCH", "/v2/serverless/ep1")
    assert f.v2.body["gpu"] == {"pools": ["AMPERE_16"], "excludedTypes": ["NVIDIA RTX A4000"]}
    assert f.v1.path == "/v1/endpoints/ep1" and f.v1.body["dataCenterIds"] == ["EU-RO-1"]


def test_multiple_mutations_in_one_document(tmp_path: Path) -> None:
    found = scan_text(
        tmp_path,
        "b.gql",
        'mutation { a: saveEndpoint(input: {gpuIds: "AMPERE_16"}) { id }\n'
        '  b: saveEndpoint(input: {gpuIds: "ADA_24"}) { id } }\n',
    )
    assert [(f.line, f.column, f.legacy["gpuIds"]) for f in found] == [(1, 15, "AMPERE_16"), (2, 6, "ADA_24")]
    assert all(f.v2.method == "POST" and f.v2.path == "/v2/serverless" for f in found)


def test_invalid_graphql_is_not_a_finding(tmp_path: Path) -> None:
    assert scan_text(tmp_path, "c.graphql", "mutation { saveEndpoint(input: { gpuIds: } }") == []


# --- Python ---------------------------------------------------------------------------------------------


def test_python_fstring_parts_are_not_statically_known(tmp_path: Path) -> None:
    f = one(
        scan_text(
            tmp_path,
            "a.py",
            """
            def go(pools, n):
                return (f'mutation {{ saveEndpoint(input: {{ gpuIds: "{pools}", '
                        f'workersMax: {n}, locations: "US" }}) {{ id }} }}')
            """,
        )
    )
    assert f.not_static == {"gpuIds": "{pools}", "workersMax": "{n}"}
    assert f.legacy == {"locations": "US"}
    assert f.v2.status == "blocked"
    assert any(x.code == "not-static" and x.field == "gpuIds" for x in f.v2.findings)


def test_python_fstring_splicing_the_whole_input(tmp_path: Path) -> None:
    f = one(scan_text(tmp_path, "a.py", 'q = f"mutation {{ saveEndpoint(input: {{ {fields} }}) {{ id }} }}"\n'))
    assert f.not_static == {"*": "{fields}"}


def test_python_dict_with_literal_variables(tmp_path: Path) -> None:
    f = one(
        scan_text(
            tmp_path,
            "a.py",
            """
            body = {
                "query": "mutation S($i: EndpointInput!) { saveEndpoint(input: $i) { id } }",
                "variables": {"i": {"id": "ep9", "gpuIds": "AMPERE_80", "name": "x-fb"}},
            }
            """,
        )
    )
    assert f.endpoint_id == "ep9" and f.legacy == {"name": "x-fb", "gpuIds": "AMPERE_80"}
    assert f.v2.body["name"] == "x" and f.v2.path == "/v2/serverless/ep9"


def test_python_variables_keyword_next_to_the_document(tmp_path: Path) -> None:
    f = one(
        scan_text(
            tmp_path,
            "a.py",
            'client.execute("mutation($g: String) { saveEndpoint(input: {gpuIds: $g}) { id } }",'
            ' variable_values={"g": "ADA_24"})\n',
        )
    )
    assert f.legacy == {"gpuIds": "ADA_24"}


def test_python_variable_not_next_to_the_document(tmp_path: Path) -> None:
    f = one(scan_text(tmp_path, "a.py", 'Q = "mutation($g: String) { saveEndpoint(input: {gpuIds: $g}) { id } }"\n'))
    assert f.not_static == {"gpuIds": "$g"}


def test_python_json_escaped_body_and_concatenation_and_format(tmp_path: Path) -> None:
    found = scan_text(
        tmp_path,
        "a.py",
        r"""
        A = ('{"query": "mutation { saveEndpoint(input: {gpuIds: \\"AMPERE_16\\", '
             'name: \\"say \\\\\\"hi\\\\\\"\\"}) { id } }"}')
        B = "mutation { saveEndpoint(input: {gpuIds: \"" + pools + "\", locations: \"US\"}) { id } }"
        C = "mutation {{ saveEndpoint(input: {{gpuIds: \"{}\", workersMax: 2}}) {{ id }} }}".format(p)
        """,
    )
    assert [f.line for f in found] == [2, 4, 5]
    assert found[0].legacy == {"name": 'say "hi"', "gpuIds": "AMPERE_16"}
    assert found[0].context == "Python string (JSON body)"
    assert found[1].not_static == {"gpuIds": "{pools}"} and found[1].legacy == {"locations": "US"}
    assert found[2].legacy == {"workersMax": 2} and "gpuIds" in found[2].not_static


def test_create_endpoint_calls(tmp_path: Path) -> None:
    found = scan_text(
        tmp_path,
        "a.py",
        """
        import runpod as rp
        from runpod.api import ctl_commands

        rp.create_endpoint(name="a-fb", template_id="t", gpu_ids="ADA_24", locations="CZ", flashboot=True)
        ctl_commands.create_endpoint("b", "t", "AMPERE_48", None, "US-KS-2", workers_max=7)
        rp.create_endpoint(**settings)
        """,
    )
    a, b, c = found
    assert a.kind == "create-endpoint" and (a.line, a.column) == (5, 1)
    assert a.legacy["flashBootType"] == "FLASHBOOT" and a.legacy["name"] == "a-fb" and a.legacy["gpuIds"] == "ADA_24"
    assert a.v1.body["flashboot"] is True and a.v1.body["name"] == "a" and a.v1.body["dataCenterIds"] == ["EU-CZ-1"]
    assert b.legacy["gpuIds"] == "AMPERE_48" and b.legacy["locations"] == "US-KS-2" and b.legacy["workersMax"] == 7
    assert b.legacy["idleTimeout"] == 5  # a default create_endpoint sends
    assert any(x.code == "create-endpoint-defaults" for x in b.v1.findings)
    assert c.not_static == {"*": "**settings"} and c.legacy == {}


def test_create_endpoint_of_another_library_is_ignored(tmp_path: Path) -> None:
    text = """
    import boto3
    boto3.client("sagemaker").create_endpoint(EndpointName="x-fb", EndpointConfigName="c")
    def create_endpoint(name): ...
    create_endpoint("y-fb")
    """
    assert scan_text(tmp_path, "a.py", text) == []


def test_python_mentions_only(tmp_path: Path) -> None:
    assert scan([TREE / "python" / "mentions.py"], bridge.build_tables()).findings == []


# --- JavaScript / TypeScript, shell ----------------------------------------------------------------------


def test_js_template_literal_comments_and_adjacent_variables(tmp_path: Path) -> None:
    found = scan_text(
        tmp_path,
        "a.js",
        """
        // saveEndpoint(input: {gpuIds: "AMPERE_16"}) in a comment
        const q = `mutation { saveEndpoint(input: {name: "${n}", gpuIds: "x"}) { id } }`;
        fetch(u, {body: JSON.stringify({query: 'mutation($i: EndpointInput) { saveEndpoint(input: $i) { id } }',
          variables: {i: {gpuIds: "AMPERE_24", workersMax: 2}}})});
        """,
    )
    assert [f.line for f in found] == [3, 4]
    assert found[0].not_static == {"name": "{n}"}
    assert found[1].legacy == {"gpuIds": "AMPERE_24", "workersMax": 2}


def test_shell_curl_forms(tmp_path: Path) -> None:
    found = scan_text(
        tmp_path,
        "deploy",
        """\
        #!/bin/sh
        # saveEndpoint in a comment
        curl -d '{"query":"mutation { saveEndpoint(input: {gpuIds: \\"AMPERE_16\\"}) { id } }"}' $URL
        curl -d "{\\"query\\": \\"mutation { saveEndpoint(input: {name: \\\\\\"$NAME\\\\\\", \\
        gpuIds: \\\\\\"ADA_24\\\\\\"}) { id } }\\"}" $URL
        curl --data @- $URL <<EOF
        {"query": "mutation { saveEndpoint(input: {id: \\"$ID\\", gpuIds: \\"AMPERE_48\\"}) { id } }"}
        EOF
        """,
    )
    assert [f.line for f in found] == [3, 4, 7]
    assert all(f.context == "shell string (JSON body)" for f in found)
    assert found[0].legacy == {"gpuIds": "AMPERE_16"}
    assert found[1].legacy == {"gpuIds": "ADA_24"} and found[1].not_static == {"name": "$NAME"}
    assert found[2].v2.path == "/v2/serverless/$ID"


def test_workflow_yaml_with_curl_step(tmp_path: Path) -> None:
    text = """
    jobs:
      deploy:
        steps:
          - run: |
              curl -d '{"query": "mutation { saveEndpoint(input: {gpuIds: \\"AMPERE_16\\"}) { id } }"}' $URL
    """
    f = one(scan_text(tmp_path, ".github/workflows/d.yml", text))
    assert (f.line, f.legacy) == (6, {"gpuIds": "AMPERE_16"})


# --- JSON / YAML ----------------------------------------------------------------------------------------


def test_hub_json(tmp_path: Path) -> None:
    f = one(scan([TREE / "hub"], bridge.build_tables()).findings)
    assert f.kind == "config-keys" and (f.line, f.column) == (9, 5)
    assert f.v2.body["gpu"]["excludedTypes"] == ["NVIDIA GeForce RTX 4090"]


def test_config_without_legacy_keys(tmp_path: Path) -> None:
    assert scan_text(tmp_path, "package.json", '{"name": "x-fb", "description": "uses gpuIds"}') == []
    response = '{"data": {"saveEndpoint": {"id": "e", "gpuIds": "AMPERE_16", "locations": "US"}}}'
    assert scan_text(tmp_path, "response.json", response) == []
    assert scan_text(tmp_path, "log.sarif.json", '{"locations": [{"uri": "a"}], "name": "r-fb"}') == []


def test_yaml_fb_name_and_list_of_gpu_ids(tmp_path: Path) -> None:
    found = scan_text(tmp_path, "e.yaml", "name: a-fb\nworkersMax: 2\n---\ngpuIds: [AMPERE_16, ADA_24]\n")
    assert [f.legacy for f in found] == [{"name": "a-fb", "workersMax": 2}, {"gpuIds": "AMPERE_16,ADA_24"}]
    assert found[0].v2.status == "blocked"  # no GPU selection to translate
    assert "not given" in next(x.message for x in found[0].v2.findings if x.code == "no-gpu-types")


def test_markdown_prose_and_fences(tmp_path: Path) -> None:
    text = """
    Call `saveEndpoint` with gpuIds: "AMPERE_16". mutation { saveEndpoint(input: {gpuIds: "ADA_24"}) { id } }

    ```graphql
    mutation { saveEndpoint(input: {gpuIds: "AMPERE_24"}) { id } }
    ```

    ```text
    mutation { saveEndpoint(input: {gpuIds: "AMPERE_48"}) { id } }
    ```
    """
    f = one(scan_text(tmp_path, "README.md", text))
    assert (f.line, f.legacy) == (5, {"gpuIds": "AMPERE_24"})


# --- the walk -------------------------------------------------------------------------------------------

MUTATION = 'Q = "mutation { saveEndpoint(input: {gpuIds: \\"AMPERE_16\\"}) { id } }"\n'


def test_gitignore_binary_size_and_unreadable(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text("build/\n*.gen.py\n!keep.gen.py\n")
    for name in ("build/a.py", "b.gen.py", "keep.gen.py", "sub/c.py", "big.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(MUTATION)
    (tmp_path / "sub" / ".gitignore").write_text("c.py\n")
    (tmp_path / "d.py").write_bytes(MUTATION.encode() + b"\0")
    (tmp_path / "big.py").write_text(MUTATION + "#" * 5000)
    (tmp_path / "gone.py").symlink_to(tmp_path / "missing.py")
    result = scan([tmp_path], bridge.build_tables(), max_size=4000)
    assert [Path(f.path).name for f in result.findings] == ["keep.gen.py"]
    assert [Path(u.path).name for u in result.unreadable] == ["gone.py"]
    assert result.files_skipped == 4  # two .gitignore files (not code), d.py (binary), big.py (too large)


# --- the command ----------------------------------------------------------------------------------------


def test_check_exit_codes(tmp_path: Path) -> None:
    (tmp_path / "clean.py").write_text("print('saveEndpoint is retired')\n")
    assert run("--check", str(tmp_path))[0] == 0
    (tmp_path / "legacy.py").write_text(MUTATION)
    code, out, _ = run("--check", str(tmp_path))
    assert code == 4 and "legacy.py:1:" in out
    assert run(str(tmp_path))[0] == 0  # without --check, finding is not failing


def test_unreadable_is_listed_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"gpuIds": "AMPERE_16",')
    (tmp_path / "legacy.py").write_text(MUTATION)
    code, out, err = run("--check", "--format", "json", str(tmp_path))
    assert code == 4
    doc = json.loads(out)
    assert [u["path"] for u in doc["unreadable"]] == [f"{tmp_path}/bad.json"]
    assert "bad.json" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "args",
    [["--format", "xml", "."], ["--max-size", "0", "."], ["does-not-exist"], [], ["--mappings", "nope.toml", "."]],
)
def test_bad_options_exit_2_with_one_line(args: list[str]) -> None:
    code, out, err = run(*args)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and err.startswith("bridge: error:"), err
    assert out == ""


def test_mappings_override(tmp_path: Path) -> None:
    """--mappings changes the translation as it does for live endpoints."""
    (tmp_path / "a.graphql").write_text('mutation { saveEndpoint(input: {gpuIds: "AMPERE_20"}) { id } }\n')
    _, out, _ = run("--format", "json", str(tmp_path))
    assert json.loads(out)["findings"][0]["v1"]["status"] == "blocked"
    override = tmp_path / "o.toml"
    override.write_text('[pools]\nAMPERE_20 = ["NVIDIA RTX A4500"]\n')
    _, out, _ = run("--format", "json", "--mappings", str(override), str(tmp_path / "a.graphql"))
    assert json.loads(out)["findings"][0]["v1"]["body"]["gpuTypeIds"] == ["NVIDIA RTX A4500"]


def test_output_file(tmp_path: Path) -> None:
    out = tmp_path / "r.sarif"
    code, stdout, _ = run("--format", "sarif", "-o", str(out), str(TREE / "graphql"))
    assert code == 0 and stdout == ""
    assert json.loads(out.read_text())["version"] == "2.1.0"


def test_json_with_tabs_is_read_at_the_right_place(tmp_path: Path) -> None:
    """Tabs between JSON tokens (which YAML refuses) do not stop the reader or move the position."""
    f = one(scan_text(tmp_path, "t.json", '{\n\t"config": {\n\t\t"gpuIds": "AMPERE_16"\n\t}\n}\n'))
    assert (f.line, f.column) == (3, 3)


def test_python_percent_formatting(tmp_path: Path) -> None:
    f = one(
        scan_text(
            tmp_path,
            "a.py",
            'q = "mutation { saveEndpoint(input: {gpuIds: \\"%s\\", workersMax: 2, name: \\"100%%\\"}) { id } }" % p\n',
        )
    )
    assert f.not_static == {"gpuIds": "{%s}"} and f.legacy == {"name": "100%", "workersMax": 2}
