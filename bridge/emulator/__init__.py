"""A local stand-in for the RunPod APIs that bridge reads and writes (SPEC §10).

Legacy GraphQL at ``/graphql``, REST v1 at ``/v1``, REST v2 at ``/v2``, all over one in-memory account
seeded from a snapshot; faults on request; a request log and the state open to tests::

    from bridge.emulator import Emulator, Faults

    with Emulator(api_key="test-key", faults=Faults(latency_ms=20)) as emu:
        os.environ.update(emu.env)      # RUNPOD_GRAPHQL_URL, RUNPOD_REST_URL, RUNPOD_REST_V2_URL
        ...
        assert emu.write_count("i02xupws21hp6i") == 1
"""

from __future__ import annotations

from bridge.emulator.faults import Faults
from bridge.emulator.generate import generate_account
from bridge.emulator.server import Emulator, requests_by_kind

__all__ = ["Emulator", "Faults", "generate_account", "requests_by_kind"]
