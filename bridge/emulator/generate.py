"""Make large, realistic, reproducible accounts for tests and benchmarks.

``generate_account(10_000, seed=1)`` returns the same snapshot document every time: GPU pools with and
without exclusions (console-style ones excluding MIG slices among them), ``-fb`` names, every
``flashBootType``, country and data-center locations (newer data centers such as ``US-MO-1`` and
``AP-IN-1`` among them), CPU endpoints, secrets in ``env``, ``aiKey`` and template env, ``createdAt``
strictly increasing. With the
default ``blocked_fraction=0.0`` every endpoint translates without an error finding (warnings such as a
lost ``PRIORITY_FLASHBOOT`` do occur).
"""

from __future__ import annotations

import random
import string
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from bridge._gc import paused_gc
from bridge.emulator.records import RAM_MULTIPLIER, USER_ID
from bridge.tables import bundled_tables

__all__ = ["generate_account"]

_ALPHABET = string.digits + string.ascii_lowercase
_START = datetime(2023, 1, 2, 9, 0, tzinfo=timezone.utc).timestamp()
_WORDS_A = ("sdxl", "llm", "whisper", "embed", "rerank", "flux", "tts", "ocr", "vision", "video", "audio", "chat")
_WORDS_B = ("worker", "prod", "staging", "api", "batch", "inference", "serve", "gen", "eval", "dev")
_LOCATIONS: tuple[str | None, ...] = (
    None,
    None,
    None,
    "",
    "US",
    "US",
    "CZ,FR,NO,RO,US",
    "EU-RO-1",
    "EU-RO-1,EU-CZ-1",
    "US-TX-3, US-GA-1",
    "CA",
    "US,CA",
    "EUR-IS-1,EUR-IS-2",
    "SE,NO",
    # data centers newer than the REST v1 enum (runpod/flash, runpodctl's catalog fixture, 2026 lists)
    "US-MO-1,US-NE-1",
    "US-MO-2, US-NC-2",
    "AP-IN-1",
    "US,CA-MTL-4",
    "EUR-NO-2,EU-RO-1",
    "US-MD-1",
)
# What the RunPod console writes today: a pool narrowed by exclusions that include a MIG slice.
_MIG_24 = "NVIDIA RTX PRO 6000 Blackwell Server Edition MIG 1g.24gb"
_MIG_48 = "NVIDIA RTX PRO 6000 Blackwell Server Edition MIG 2g.48gb"
_CONSOLE_GPU_IDS = (
    ("AMPERE_24", ("NVIDIA L4", "NVIDIA RTX A5000", _MIG_24)),
    ("AMPERE_24", (_MIG_24,)),
    ("ADA_48_PRO", (_MIG_48,)),
    ("ADA_48_PRO", ("NVIDIA L40", _MIG_48)),
)
_CUDA: tuple[str | None, ...] = (None,) * 7 + ("12.4,12.8", "12.8", "12.1,12.2,12.3,12.4")
_BLOCKERS = ("unknown-pool", "unknown-location", "unknown-cpu", "all-excluded", "workers")


def _ident(rng: random.Random, seen: set[str]) -> str:
    while True:
        value = rng.getrandbits(71)
        chars = []
        for _ in range(14):
            value, digit = divmod(value, 36)
            chars.append(_ALPHABET[digit])
        ident = "".join(chars)
        if ident not in seen:
            seen.add(ident)
            return ident


def _gpu_variants(rng: random.Random, pools: Mapping[str, Sequence[str]]) -> list[str]:
    """Valid ``gpuIds`` strings: single pools, priority lists, and pools narrowed by exclusions."""
    names = list(pools)
    variants = list(names) + ["AMPERE_16", "ADA_24", "AMPERE_24", "AMPERE_48"] * 3
    for _ in range(40):
        variants.append(",".join(rng.sample(names, rng.randint(2, 3))))
    wide = [name for name in names if len(pools[name]) >= 2]
    for _ in range(60):
        chosen = rng.sample(wide, rng.randint(1, 2))
        pool = chosen[0]
        members = list(pools[pool])
        excluded = rng.sample(members, rng.randint(1, len(members) - 1))
        variants.append(",".join(chosen + ["-" + t for t in excluded]))
    for pool, dropped in _CONSOLE_GPU_IDS:  # each twice: common on accounts made in the console
        if set(dropped) <= set(pools.get(pool, ())) and len(dropped) < len(pools[pool]):
            variants += [",".join([pool, *("-" + t for t in dropped)])] * 2
    return variants


def generate_account(
    n: int,
    seed: int = 0,
    *,
    blocked_fraction: float = 0.0,
    cpu_fraction: float = 0.08,
    pools: Mapping[str, Sequence[str]] | None = None,
    fb_suffix: bool = False,
) -> dict[str, Any]:
    """Return a snapshot document with ``n`` endpoints, the same for the same arguments.

    ``blocked_fraction`` of the endpoints carry one problem that blocks translation (an unknown pool,
    location or CPU instance, every type excluded, or ``workersMin > workersMax``). ``fb_suffix`` gives
    every name the legacy ``-fb`` suffix, so that a migration has a write to make for each unblocked
    endpoint (most generated endpoints otherwise already read back as their body): benchmarks, soak and
    kill tests measure nothing on a migration that writes nothing.
    """
    if n < 0:
        raise ValueError("n must be >= 0")
    if not 0.0 <= blocked_fraction <= 1.0 or not 0.0 <= cpu_fraction <= 1.0:
        raise ValueError("blocked_fraction and cpu_fraction must be within 0..1")
    with paused_gc():  # millions of young objects that all survive: collecting them only costs time
        doc = _generate(n, seed, blocked_fraction, cpu_fraction, pools)
    if fb_suffix:
        for record in doc["data"]["myself"]["endpoints"]:
            if not record["name"].lower().rstrip().endswith("-fb"):
                record["name"] += "-fb"
    return doc


def _generate(
    n: int,
    seed: int,
    blocked_fraction: float,
    cpu_fraction: float,
    pools: Mapping[str, Sequence[str]] | None,
) -> dict[str, Any]:
    rng = random.Random(seed)
    table = {k: tuple(v) for k, v in (pools if pools is not None else bundled_tables().pools).items()}
    gpu_variants = _gpu_variants(rng, table)
    flavors = list(RAM_MULTIPLIER)
    seen: set[str] = set()
    clock = _START
    endpoints: list[dict[str, Any]] = []
    for index in range(n):
        clock += rng.randint(1, 7200)
        ident = _ident(rng, seen)
        roll = rng.random()
        flash = None if roll < 0.35 else "FLASHBOOT" if roll < 0.7 else "OFF" if roll < 0.95 else "PRIORITY_FLASHBOOT"
        name = f"{rng.choice(_WORDS_A)}-{rng.choice(_WORDS_B)}-{index:05d}"
        if (flash is None and rng.random() < 0.5) or (flash == "FLASHBOOT" and rng.random() < 0.1):
            name += rng.choice(("-fb", " -fb", "-FB"))
        lb = rng.random() < 0.1
        scaler = "REQUEST_COUNT" if lb or rng.random() < 0.25 else "QUEUE_DELAY"
        workers_min = rng.choice((0, 0, 0, 1, 2))
        workers_max = workers_min + rng.randint(1, 10)
        cpu = rng.random() < cpu_fraction
        cuda = None if cpu else rng.choice(_CUDA)
        env: list[dict[str, str]] = []
        if rng.random() < 0.6:
            env.append({"key": "HF_TOKEN", "value": f"SECRET-hf_{rng.getrandbits(40):010x}"})
        if rng.random() < 0.5:
            env.append({"key": "MODEL_NAME", "value": rng.choice(("sdxl", "llama-3-8b", "whisper-large-v3"))})
        record: dict[str, Any] = {
            "id": ident,
            "name": name,
            "gpuIds": "" if cpu else rng.choice(gpu_variants),
            "gpuCount": 0 if cpu else rng.choice((1, 1, 1, 2, 4)),
            "instanceIds": None,
            "locations": rng.choice(_LOCATIONS),
            "networkVolumeId": None,
            "networkVolumeIds": [],
            "idleTimeout": rng.choice((5, 5, 10, 30, 60, 300)),
            "scalerType": scaler,
            "scalerValue": rng.randint(1, 8),
            "workersMin": workers_min,
            "workersMax": workers_max,
            "workersStandby": rng.choice((0, 0, 1)),
            "templateId": "tpl" + "".join(rng.choices(_ALPHABET, k=7)),
            "type": "LB" if lb else "QB",
            "executionTimeoutMs": rng.choice((600000, 600000, 300000, 1200000)),
            "allowedCudaVersions": cuda,
            "minCudaVersion": "12.1" if cuda is None and not cpu and rng.random() < 0.1 else None,
            "flashBootType": flash,
            "modelReferences": [] if rng.random() < 0.9 else ["meta-llama/Llama-3.1-8B"],
            "compliance": [] if rng.random() < 0.95 else ["GDPR"],
            "aiKey": f"SECRET-aikey-{rng.getrandbits(40):010x}" if rng.random() < 0.3 else None,
            "env": env,
            "createdAt": datetime.fromtimestamp(clock, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "version": rng.randint(0, 5),
            "userId": USER_ID,
        }
        if cpu:
            vcpu = rng.choice((2, 4, 8))
            chosen = rng.sample(flavors, rng.choice((1, 1, 2)))
            record["instanceIds"] = [f"{f}-{vcpu}-{vcpu * RAM_MULTIPLIER[f]}" for f in chosen]
        if rng.random() < 0.1:
            volumes = [
                {"networkVolumeId": "vol" + "".join(rng.choices(_ALPHABET, k=9)), "dataCenterId": dc}
                for dc in rng.sample(("EU-RO-1", "US-TX-3", "EU-CZ-1"), rng.randint(1, 2))
            ]
            record["networkVolumeIds"] = volumes
        if rng.random() < 0.2:
            record["template"] = {
                "id": record["templateId"],
                "name": f"{name} template",
                "imageName": "runpod/worker-v1-vllm:stable",
                "env": [{"key": "API_SECRET", "value": f"SECRET-tpl_{rng.getrandbits(32):08x}"}],
            }
        if blocked_fraction and rng.random() < blocked_fraction:
            _block(record, rng.choice(_BLOCKERS))
        endpoints.append(record)
    pool_list = [{"id": pool, "gpuTypeIds": list(members)} for pool, members in table.items()]
    return {"data": {"myself": {"endpoints": endpoints}, "serverlessGpuPools": pool_list}}


def _block(record: dict[str, Any], how: str) -> None:
    if how == "unknown-pool":
        record["gpuIds"], record["instanceIds"] = "AMPERE_20", None
    elif how == "unknown-location":
        record["locations"] = "XX,US"
    elif how == "unknown-cpu":
        record["gpuIds"], record["instanceIds"] = "", ["cpu9x-4-16"]
    elif how == "all-excluded":
        record["gpuIds"], record["instanceIds"] = "AMPERE_48,-NVIDIA A40,-NVIDIA RTX A6000", None
    else:
        record["workersMin"], record["workersMax"] = 5, 2
