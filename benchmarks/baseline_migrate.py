"""The baseline: the plain sequential loop a user would write with httpx instead of ``bridge migrate``.

It takes the bodies ``bridge export`` wrote (``DIR/plan.json`` and ``DIR/<id>.json``) and, one endpoint after
the other, reads the endpoint, sends the update and reads it back to check it: the same three REST v1
requests per endpoint that bridge's apply engine makes. Exit 1 when any read-back differs.

    RUNPOD_REST_URL=http://127.0.0.1:8765/v1 RUNPOD_API_KEY=key python benchmarks/baseline_migrate.py DIR
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx


def same(want: Any, have: Any) -> bool:
    """Lists are compared as sets (the server may reorder them), anything else as it is."""
    if isinstance(want, list) and isinstance(have, list):
        return sorted(map(json.dumps, want)) == sorted(map(json.dumps, have))
    return bool(want == have)


def main(export_dir: str) -> int:
    base = os.environ["RUNPOD_REST_URL"].rstrip("/")
    headers = {"Authorization": f"Bearer {os.environ['RUNPOD_API_KEY']}"}
    plan = json.loads((Path(export_dir) / "plan.json").read_text())
    wrong = 0
    with httpx.Client(headers=headers, timeout=30) as client:
        for endpoint in plan["endpoints"]:
            if endpoint["status"] != "update":
                continue
            endpoint_id = endpoint["id"]
            body = json.loads((Path(export_dir) / f"{endpoint_id}.json").read_text())
            url = f"{base}/endpoints/{endpoint_id}"
            client.get(url).raise_for_status()
            client.post(f"{url}/update", json=body).raise_for_status()
            state = client.get(url).raise_for_status().json()
            # The read leaves some body fields out (a CPU endpoint reads back as instanceIds): skip those.
            if not all(same(value, state[key]) for key, value in body.items() if key in state):
                wrong += 1
                print(f"{endpoint_id}: the read-back differs from the body", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
