"""Mapping tables: bundled data, validation of broken tables and overrides, precedence."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import FIXTURES, ROOT, v1_spec

from bridge.errors import TableError
from bridge.tables import build_tables, bundled_tables, load_override, load_table_dir, parse_override

UPDATE = v1_spec()["components"]["schemas"]["EndpointUpdateInput"]["properties"]


def test_eleven_known_pools_in_order() -> None:
    """The bundled pool table has the 11 known serverless pools."""
    assert list(bundled_tables().pools) == [
        "AMPERE_16", "AMPERE_24", "ADA_24", "ADA_32_PRO", "AMPERE_48", "ADA_48_PRO",
        "AMPERE_80", "ADA_80_PRO", "HOPPER_141", "BLACKWELL_96", "BLACKWELL_180",
    ]  # fmt: skip


def test_live_verified_pool_membership() -> None:
    """AMPERE_48 is exactly {A40, RTX A6000}, as runpodctl PR #340 verified in production."""
    assert bundled_tables().pools["AMPERE_48"] == ("NVIDIA A40", "NVIDIA RTX A6000")


def test_disputed_pools_say_so() -> None:
    """Every pool whose sources disagree carries a `disputed` note, and every pool names a source."""
    import tomllib

    raw = tomllib.loads((ROOT / "mappings/gpu_pools.toml").read_text())["pools"]
    for pool in ("AMPERE_16", "AMPERE_24", "ADA_48_PRO", "ADA_80_PRO"):
        assert raw[pool].get("disputed"), pool
    assert all(p["sources"] for p in raw.values())


def test_gpu_enum_matches_stored_spec_exactly() -> None:
    """The GPU types are the v1 enum in spec order, including the two double-space entries."""
    tables = bundled_tables()
    assert list(tables.gpu_types_ordered) == UPDATE["gpuTypeIds"]["items"]["enum"]
    assert "NVIDIA  RTX A4500" in tables.gpu_types and "NVIDIA  A30" in tables.gpu_types


def test_other_enums_match_stored_spec() -> None:
    """CUDA versions, CPU flavors, scaler types and the 26 data centers match the stored v1 spec."""
    tables = bundled_tables()
    assert list(tables.cuda_versions) == UPDATE["allowedCudaVersions"]["items"]["enum"]
    assert list(tables.cuda_versions) == UPDATE["minCudaVersion"]["enum"]
    assert list(tables.cpu_flavors) == UPDATE["cpuFlavorIds"]["items"]["enum"]
    assert list(tables.scaler_types) == UPDATE["scalerType"]["enum"]
    assert list(tables.data_centers) == UPDATE["dataCenterIds"]["items"]["enum"]
    assert len(tables.data_centers) == 26


def test_every_bundled_pool_member_is_a_rest_gpu_type() -> None:
    """Bundled pool members are spelled as REST v1 expects them."""
    tables = bundled_tables()
    for pool, members in tables.pools.items():
        for member in members:
            assert member in tables.gpu_types, (pool, member)


def test_countries_derive_from_data_centers() -> None:
    """US expands to its 12 data centers in spec order; GB is known but has none."""
    tables = bundled_tables()
    assert tables.countries["US"][:3] == ("US-IL-1", "US-TX-3", "US-KS-2")
    assert len(tables.countries["US"]) == 12
    assert tables.countries["GB"] == ()
    assert tables.countries["NO"] == ("EUR-NO-1",)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("override-pool-not-list.toml", "pools.AMPERE_16: expected a list of strings"),
        ("override-empty-pool.toml", "AMPERE_16: the list is empty"),
        ("override-unknown-section.toml", "regions: unknown key"),
        ("override-unknown-dc.toml", "locations.EU: 'EU-XX-9' is not a REST v1 data center"),
        ("override-invalid-toml.toml", "invalid TOML"),
        ("override-bad-pool-id.toml", "'AMPERE 16' is not a pool id"),
    ],
)
def test_broken_override_names_file_key_and_problem(name: str, expected: str) -> None:
    """A broken override file fails with a message naming the file, the key and the problem."""
    path = FIXTURES / "bad" / name
    with pytest.raises(TableError) as info:
        build_tables(overrides=[load_override(path)])
    assert str(info.value).startswith(str(path))
    assert expected in str(info.value)


def test_missing_override_file() -> None:
    """A missing override file is a TableError naming it."""
    with pytest.raises(TableError, match=r"nope\.toml: cannot read"):
        load_override("nope.toml")


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        (
            "gpu_pools.toml",
            "[pools.AMPERE_24]",
            "[pools.AMPERE_24]\nbogus = 1",
            "pools.AMPERE_24.bogus: unknown key",
        ),
        (
            "gpu_pools.toml",
            'members = ["NVIDIA A40", "NVIDIA RTX A6000"]',
            'members = ["NVIDIA A40", "-NVIDIA RTX A6000"]',
            "pools.AMPERE_48.members: '-NVIDIA RTX A6000' is not a valid id",
        ),
        (
            "gpu_pools.toml",
            'members = ["NVIDIA A40", "NVIDIA RTX A6000"]',
            'members = ["NVIDIA A40", "NVIDIA A40"]',
            "pools.AMPERE_48.members: 'NVIDIA A40' is listed twice",
        ),
        ("gpu_pools.toml", "[pools.AMPERE_48]", '[pools."AMPERE 48"]', "'AMPERE 48' is not a pool id"),
        ("data_centers.toml", 'country = "RO"', 'country = "Romania"', "data_centers.EU-RO-1.country"),
        ("rest_v1.toml", "cpu_flavors = [", "cpu_flavorz = [", "cpu_flavors: missing"),
        (
            "data_centers.toml",
            "[data_centers.EU-RO-1]",
            "[data_centers.EU-RO-9]",
            "not the REST v1 data-center enum",
        ),
    ],
)
def test_broken_bundled_table(tmp_path: Path, file: str, old: str, new: str, expected: str) -> None:
    """A broken table file names the file and the key."""
    directory = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", directory)
    target = directory / file
    target.write_text(target.read_text().replace(old, new, 1))
    with pytest.raises(TableError) as info:
        load_table_dir(directory)
    assert str(target) in str(info.value)
    assert expected in str(info.value)


def test_precedence_bundled_then_snapshot_then_overrides() -> None:
    """Snapshot pools replace the bundled table; overrides replace or add single pools; later overrides win."""
    tables = build_tables(
        pools={"AMPERE_16": ["NVIDIA RTX A4000"], "NEW_POOL": ["NVIDIA L4"]},
        overrides=[
            {"pools": {"NEW_POOL": ["NVIDIA A40"]}},
            {
                "pools": {"NEW_POOL": ["NVIDIA H200"], "EXTRA": ["NVIDIA B200"]},
                "locations": {"EU": ["EU-RO-1"]},
            },
        ],
    )
    assert tables.pool_source == "snapshot"
    assert tables.pools == {
        "AMPERE_16": ("NVIDIA RTX A4000",),
        "NEW_POOL": ("NVIDIA H200",),
        "EXTRA": ("NVIDIA B200",),
    }
    assert tables.locations == {"EU": ("EU-RO-1",)}
    assert tables.overrides == ("override #1", "override #2")


def test_override_data_is_validated() -> None:
    """Overrides given as Python data are validated like files."""
    with pytest.raises(TableError, match=r"pools\.X: expected a list of strings"):
        parse_override({"pools": {"X": 3}})


def test_tables_are_frozen() -> None:
    """Validated tables cannot be changed by accident."""
    with pytest.raises(Exception, match="frozen"):
        bundled_tables().pool_source = "live"  # type: ignore[misc]
