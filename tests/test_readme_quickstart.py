"""The README quickstart, run verbatim with bash against the running platform."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def quickstart_script() -> str:
    text = README.read_text()
    section = text.split("## Quickstart", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "README has no sh block under Quickstart"
    return match.group(1)


async def test_the_readme_quickstart_runs_verbatim(gateway_url):
    proc = await asyncio.create_subprocess_exec(
        "bash",
        "-euo",
        "pipefail",
        "-c",
        quickstart_script(),
        env={**os.environ, "STACKBE": gateway_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    output = out.decode()
    assert proc.returncode == 0, output + err.decode()
    assert re.search(r"tenant key: sbt_\w{38}", output)
    assert re.search(r"app key: sba_\w{38}", output)
    assert '"entitlements":{"projects":10,"features":["analytics","exports"]}' in output
    assert '"status":"active"' in output
    last = output.strip().splitlines()[-1]
    assert '"statusCode":401' in last and '"code":"UNAUTHORIZED"' in last
