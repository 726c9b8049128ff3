"""The CI recipe in README.md runs exactly as written against a real sandbox."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_recipe() -> str:
    """Return the first sh code block after the 'Scripting and CI' heading."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Scripting and CI", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert match, "README.md has no sh code block under 'Scripting and CI'"
    return match.group(1)


@pytest.mark.slow
def test_readme_ci_recipe_runs(tmp_path: Path):
    from eth_account import Account

    script = tmp_path / "recipe.sh"
    script.write_text(readme_recipe(), encoding="utf-8")
    env = dict(os.environ)
    # The recipe calls `loom` from PATH, as a CI job would after `pip install`.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["LOOM_PRIVATE_KEY"] = Account.create().key.hex()

    result = subprocess.run(
        ["bash", str(script)], cwd=tmp_path, env=env, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=180,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "Completed"
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert events[-1]["exit_code"] == 0
    assert json.loads((tmp_path / "result.json").read_text())["outcome"] == "Completed"
    assert env["LOOM_PRIVATE_KEY"].removeprefix("0x") not in result.stdout + result.stderr


def test_readme_recipe_is_strict_shell():
    recipe = readme_recipe()
    assert recipe.startswith("set -eu\n")
    assert "LOOM_PRIVATE_KEY" in recipe
    assert "-o json" in recipe
