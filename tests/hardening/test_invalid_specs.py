"""The corpus of invalid job specs in tests/data/invalid-specs: each gives exit 2 and exactly its expected message.

Each `NN-name.yaml` (or `.json`) holds one mistake, and `NN-name.expected` holds the exact
stderr of `loom jobs validate NN-name.yaml` run in that folder. `loom jobs create --dry-run`
must print the same, because it validates the same way before anything else. Every case
runs through `loom_cli.app.main` in-process, so the whole corpus stays fast; a sample also
runs as a subprocess, to show the two give the same bytes.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loom_cli.app import main

CORPUS = Path(__file__).resolve().parents[1] / "data" / "invalid-specs"
SPECS = sorted(path for path in CORPUS.iterdir() if path.suffix in (".yaml", ".json"))
COMMANDS = {"validate": ["jobs", "validate"], "create-dry-run": ["jobs", "create", "--dry-run"]}


def expected_stderr(spec: Path) -> str:
    return spec.with_suffix(".expected").read_text(encoding="utf-8")


def test_corpus_is_complete():
    assert len(SPECS) >= 40
    expected = sorted(CORPUS.glob("*.expected"))
    assert [path.stem for path in expected] == [spec.stem for spec in SPECS]
    assert len({spec.stem.split("-", 1)[0] for spec in SPECS}) == len(SPECS), "case numbers must be unique"


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("spec", SPECS, ids=[spec.stem for spec in SPECS])
def test_invalid_spec_message(spec: Path, command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.chdir(CORPUS)

    with pytest.raises(SystemExit) as exited:
        main([*COMMANDS[command], spec.name])

    captured = capsys.readouterr()
    assert exited.value.code == 2
    assert captured.out == ""
    assert captured.err == expected_stderr(spec)


@pytest.mark.parametrize("name", ["01-empty-file.yaml", "14-name-control-character.yaml", "51-every-problem-at-once.yaml", "58-json-lone-surrogate.json"])
def test_invalid_spec_message_from_subprocess(name: str):
    spec = CORPUS / name
    for command in COMMANDS.values():
        result = subprocess.run(
            [sys.executable, "-m", "loom_cli", *command, name],
            cwd=CORPUS,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=60,
        )

        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr == expected_stderr(spec)
