"""Mapping tables: bundled data, validation of broken tables and overrides, precedence."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from helpers import FIXTURES, ROOT, v1_spec, v2_spec

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
    assert list(tables.v1_data_centers) == UPDATE["dataCenterIds"]["items"]["enum"]
    assert len(tables.v1_data_centers) == 26
    assert list(tables.data_centers)[:26] == list(tables.v1_data_centers)


MIG_24 = "NVIDIA RTX PRO 6000 Blackwell Server Edition MIG 1g.24gb"
MIG_48 = "NVIDIA RTX PRO 6000 Blackwell Server Edition MIG 2g.48gb"


def test_every_bundled_pool_member_is_a_rest_gpu_type() -> None:
    """Bundled pool members are spelled as REST v1 expects them, except the MIG slices (not in the v1 enum)."""
    tables = bundled_tables()
    for pool, members in tables.pools.items():
        for member in members:
            assert member in tables.gpu_types or " MIG " in member, (pool, member)


def test_mig_slices_are_pool_members() -> None:
    """The console's MIG-slice exclusions name members of their pools, last in priority."""
    tables = bundled_tables()
    assert tables.pools["AMPERE_24"][-1] == MIG_24
    assert tables.pools["ADA_48_PRO"][-1] == MIG_48
    assert tables.pool_of[MIG_24] == "AMPERE_24" and tables.pool_of[MIG_48] == "ADA_48_PRO"
    assert MIG_24 not in tables.gpu_types and MIG_48 not in tables.gpu_types  # not in the stored v1 enum
    for token in "AMPERE_24,-NVIDIA L4,-NVIDIA RTX A5000,-" + MIG_24, "ADA_48_PRO,-" + MIG_48:
        pool, *excluded = token.split(",")
        assert all(x[1:] in tables.pools[pool] for x in excluded), token


def test_mig_slices_carry_their_sources_and_choice() -> None:
    """Each pool with a MIG slice names the evidence and says why the slice was taken."""
    import tomllib

    raw = tomllib.loads((ROOT / "mappings/gpu_pools.toml").read_text())
    assert any("MIG 1g.24gb" in s for s in raw["pools"]["AMPERE_24"]["sources"])
    assert "MIG 1g.24gb" in raw["pools"]["AMPERE_24"]["disputed"]
    assert "MIG 2g.48gb" in raw["pools"]["ADA_48_PRO"]["disputed"]
    assert raw["no_pool"]["sources"]


def test_gpu_types_in_no_pool() -> None:
    """Types a live check found in no pool are listed as such, and none of them is in a pool."""
    tables = bundled_tables()
    assert "NVIDIA RTX PRO 4500 Blackwell" in tables.gpu_types_without_pool
    assert "NVIDIA B300 SXM6 AC MIG 1g.34gb" in tables.gpu_types_without_pool
    assert not set(tables.gpu_types_without_pool) & set(tables.pool_of)


NEWER_DCS = {
    "US-MO-1": ("US", "NORTH_AMERICA"),
    "US-MO-2": ("US", "NORTH_AMERICA"),
    "US-NC-2": ("US", "NORTH_AMERICA"),
    "US-NE-1": ("US", "NORTH_AMERICA"),
    "US-MD-1": ("US", "NORTH_AMERICA"),
    "CA-MTL-4": ("CA", "NORTH_AMERICA"),
    "EUR-NO-2": ("NO", "EUROPE"),
    "AP-IN-1": ("IN", "ASIA"),
    "AP-IN-2": ("IN", "ASIA"),
}


@pytest.mark.parametrize(("dc_id", "expected"), sorted(NEWER_DCS.items()))
def test_newer_data_centers(dc_id: str, expected: tuple[str, str]) -> None:
    """Each newer data center has its country, v2 catalog region and a source, and is not in the v1 enum."""
    tables = bundled_tables()
    dc = tables.data_centers[dc_id]
    assert (dc.country, dc.catalog_region) == expected
    assert tables.data_center_regions[dc_id] == expected[1]
    assert dc.source.strip()
    assert dc_id not in tables.v1_data_centers
    assert dc_id in tables.countries[dc.country]


def test_newer_data_centers_follow_the_v1_enum() -> None:
    """The newer data centers come after the 26 v1 ones, so v1 expansions keep their order."""
    tables = bundled_tables()
    assert list(tables.data_centers)[26:] == list(NEWER_DCS)


def test_every_data_center_is_complete() -> None:
    """Every data center names a country, a locality, a v2 catalog region of the spec's enum and a source."""
    regions = v2_spec()["components"]["schemas"]["DataCenterRegion"]["enum"]
    for dc_id, dc in bundled_tables().data_centers.items():
        assert dc.catalog_region in regions and dc.catalog_region != "UNKNOWN", dc_id
        assert dc.region and dc.source, dc_id


def test_countries_derive_from_data_centers() -> None:
    """US expands over every US data center the table knows: the 12 of the v1 enum in spec order, then
    the 5 newer ones; GB is known but has none."""
    tables = bundled_tables()
    assert tables.countries["US"][:3] == ("US-IL-1", "US-TX-3", "US-KS-2")
    assert len(tables.countries["US"]) == 17
    assert tables.countries["US"][12:] == ("US-MO-1", "US-MO-2", "US-NC-2", "US-NE-1", "US-MD-1")
    assert tables.countries["GB"] == ()
    assert tables.countries["NO"] == ("EUR-NO-1", "EUR-NO-2")
    assert tables.countries["IN"] == ("AP-IN-1", "AP-IN-2")
    assert tables.countries["CA"] == ("CA-MTL-1", "CA-MTL-3", "CA-MTL-2", "CA-MTL-4")


CPU_RATIOS = {"cpu3c": 2.0, "cpu3g": 4.0, "cpu3m": 8.0, "cpu5c": 2.0, "cpu5g": 4.0, "cpu5m": 8.0}


def test_cpu_memory_per_vcpu() -> None:
    """Each CPU flavor has its memory per vCPU, with a source; every v1 flavor is in the table."""
    tables = bundled_tables()
    assert tables.cpu_memory_per_vcpu == CPU_RATIOS
    assert set(tables.cpu_flavors) <= set(tables.cpu_flavor_table)
    for flavor, spec in tables.cpu_flavor_table.items():
        assert spec.source.strip() and 1 <= spec.vcpu_min <= spec.vcpu_max, flavor
    assert tables.cpu_flavor_table["cpu3c"].disputed  # the v2 spec example's 2.5 is noted and declined


def test_known_cpu_instance_ids_match_their_flavor_ratio() -> None:
    """The instance ids flash and the docs list are vCPU x ratio, so the ratio table explains them."""
    tables = bundled_tables()
    for instance in ("cpu3g-4-16", "cpu3c-2-4", "cpu3c-8-16", "cpu5c-4-8", "cpu5g-4-16", "cpu3m-2-16", "cpu5m-4-32"):
        flavor, vcpu, memory = instance.split("-")
        assert int(vcpu) * tables.cpu_memory_per_vcpu[flavor] == int(memory), instance


def test_sources_default_to_bundled_and_follow_layers() -> None:
    """Tables name where each table came from; a pool layer relabels pools, `sources` relabels any table."""
    assert bundled_tables().sources == dict.fromkeys(("pools", "data_centers", "cpus", "rest_v1"), "bundled")
    layered = build_tables(pools={"P": ["NVIDIA L4"]}, pool_source="live")
    assert layered.sources["pools"] == "live" and layered.sources["data_centers"] == "bundled"
    relabeled = build_tables(sources={"data_centers": "live v2 catalog"})
    assert relabeled.sources["data_centers"] == "live v2 catalog" and relabeled.sources["pools"] == "bundled"


def test_override_may_name_newer_data_centers() -> None:
    """An override's location may expand to a newer data center."""
    tables = build_tables(overrides=[{"locations": {"MIDWEST": ["US-MO-1", "US-NE-1"]}}])
    assert tables.locations["MIDWEST"] == ("US-MO-1", "US-NE-1")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("override-pool-not-list.toml", "pools.AMPERE_16: expected a list of strings"),
        ("override-empty-pool.toml", "AMPERE_16: the list is empty"),
        ("override-unknown-section.toml", "regions: unknown key"),
        ("override-unknown-dc.toml", "locations.EU: 'EU-XX-9' is not a known data center"),
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
            "does not start with the REST v1 data-center enum",
        ),
        (
            "data_centers.toml",
            'catalog_region = "ASIA"',
            'catalog_region = "ASIA_PACIFIC"',
            "is not a v2 catalog region",
        ),
        ("data_centers.toml", 'catalog_region = "EUROPE"\n', "", "catalog_region: missing"),
        ("cpu_flavors.toml", "memory_per_vcpu = 2.0", "memory_per_vcpu = 0", "flavors.cpu3c.memory_per_vcpu"),
        ("cpu_flavors.toml", "vcpu_max = 32", "vcpu_max = 0", "flavors.cpu3c.vcpu_max"),
        ("cpu_flavors.toml", "[flavors.cpu3c]", "[flavors.cpu3z]", "REST v1 flavor 'cpu3c' is missing"),
        ("cpu_flavors.toml", "[flavors.cpu3c]", "[flavors.big]", "'big' is not a CPU flavor id"),
        ("cpu_flavors.toml", "[flavors.cpu3c]", "[flavors.cpu3c]\nbogus = 1", "flavors.cpu3c.bogus: unknown key"),
        (
            "gpu_pools.toml",
            '  "NVIDIA RTX PRO 4000 Blackwell",',
            '  "NVIDIA L4",',
            "no_pool: 'NVIDIA L4' is in a pool",
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
