"""infra.lambda_python: which interpreter runs the Lambda package's tests and compiles the asset's bytecode.

The interpreters here are small shell scripts in tmp_path that answer the version probe as a CPython would
(version, and 1 with the GIL / 0 free-threaded), laid out as PATH entries and as a pyenv root; one test uses
the real interpreter of this machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.archiver import RUNTIME
from infra.bundling import python_version
from infra.lambda_python import ENV_VAR, InterpreterNotFound, find, version_of

ROOT = Path(__file__).resolve().parents[2]


def fake_python(path: Path, answer: str, exit_code: int = 0) -> Path:
    """An executable that prints `answer` to the probe (`python -c ...`) and exits with `exit_code`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho '{answer}'\nexit {exit_code}\n")
    path.chmod(0o755)
    return path


def pyenv_version(root: Path, folder: str, answer: str) -> Path:
    return fake_python(root / "versions" / folder / "bin" / "python3.13", answer)


def environ(tmp_path: Path, **values: str) -> dict[str, str]:
    """An environment with an empty PATH folder and an empty pyenv root unless given."""
    (tmp_path / "empty").mkdir(exist_ok=True)
    return {"PATH": str(tmp_path / "empty"), "PYENV_ROOT": str(tmp_path / "no-pyenv"), **values}


def test_version_of_a_cpython_with_the_gil(tmp_path: Path) -> None:
    assert version_of(str(fake_python(tmp_path / "python", "3.13 1"))) == "3.13"
    assert version_of(str(fake_python(tmp_path / "ft", "3.13 0"))) is None  # free-threaded: not the runtime's
    assert version_of(str(fake_python(tmp_path / "broken", "3.13 1", exit_code=1))) is None
    assert version_of(str(fake_python(tmp_path / "garbage", "Python 3.13.0"))) is None
    assert version_of(str(tmp_path / "missing")) is None
    assert version_of(sys.executable) == f"{sys.version_info.major}.{sys.version_info.minor}"  # a real CPython


def test_python_lambda_of_another_version_is_refused_naming_the_variable(tmp_path: Path) -> None:
    wrong = fake_python(tmp_path / "python3.12", "3.12 1")
    good = fake_python(tmp_path / "path" / "python3.13", "3.13 1")  # found on PATH, yet the variable wins
    with pytest.raises(InterpreterNotFound) as raised:
        find("3.13", environ(tmp_path, PATH=str(good.parent), **{ENV_VAR: str(wrong)}))
    message = str(raised.value)
    assert f"{ENV_VAR}={wrong} is Python 3.12, not Python 3.13" in message
    assert f"set {ENV_VAR} to the path of a CPython 3.13 interpreter" in message


def test_python_lambda_that_is_not_a_working_cpython_is_refused(tmp_path: Path) -> None:
    for named in (tmp_path / "nothing-here", fake_python(tmp_path / "ft", "3.13 0")):
        with pytest.raises(InterpreterNotFound, match=rf"{ENV_VAR}=.* is not a working CPython, not Python 3.13"):
            find("3.13", environ(tmp_path, **{ENV_VAR: str(named)}))


def test_python_lambda_of_the_right_version_is_used(tmp_path: Path) -> None:
    named = fake_python(tmp_path / "custom" / "py", "3.13 1")
    on_path = fake_python(tmp_path / "path" / "python3.13", "3.13 1")
    assert find("3.13", environ(tmp_path, PATH=str(on_path.parent), **{ENV_VAR: str(named)})) == str(named)
    assert find("3.13", environ(tmp_path, PATH=str(on_path.parent), **{ENV_VAR: ""})) == str(on_path)


def test_python3_x_on_path_comes_before_pyenv(tmp_path: Path) -> None:
    on_path = fake_python(tmp_path / "path" / "python3.13", "3.13 1")
    pyenv_version(tmp_path / "pyenv", "3.13.5", "3.13 1")
    env = environ(tmp_path, PATH=str(on_path.parent), PYENV_ROOT=str(tmp_path / "pyenv"))
    assert find("3.13", env) == str(on_path)


def test_pyenvs_highest_patch_release_is_found_behind_a_shim_that_fails(tmp_path: Path) -> None:
    """A pyenv shim on PATH fails when the version is not the selected one (as on this machine)."""
    shim = fake_python(tmp_path / "shims" / "python3.13", "pyenv: python3.13: command not found", exit_code=127)
    root = tmp_path / "pyenv"
    pyenv_version(root, "3.13.4", "3.13 1")
    highest = pyenv_version(root, "3.13.10", "3.13 1")  # 10 > 4: numbers, not strings
    pyenv_version(root, "3.12.9", "3.12 1")
    pyenv_version(root, "3.13.11t", "3.13 0")  # pyenv's name of a free-threaded build: not considered
    (root / "versions" / "3.13.12" / "bin").mkdir(parents=True)  # an unfinished install: no interpreter
    assert find("3.13", environ(tmp_path, PATH=str(shim.parent), PYENV_ROOT=str(root))) == str(highest)


def test_a_free_threaded_build_is_skipped_wherever_it_is(tmp_path: Path) -> None:
    free_threaded = fake_python(tmp_path / "path" / "python3.13", "3.13 0")
    root = tmp_path / "pyenv"
    pyenv_version(root, "3.13.9", "3.13 0")  # free-threaded under an ordinary name: the probe tells
    gil = pyenv_version(root, "3.13.2", "3.13 1")
    assert find("3.13", environ(tmp_path, PATH=str(free_threaded.parent), PYENV_ROOT=str(root))) == str(gil)


def test_nothing_found_says_how_to_name_one(tmp_path: Path) -> None:
    pyenv_version(tmp_path / "pyenv", "3.12.9", "3.12 1")
    with pytest.raises(InterpreterNotFound) as raised:
        find("3.13", environ(tmp_path, PYENV_ROOT=str(tmp_path / "pyenv")))
    assert str(raised.value).startswith("no Python 3.13 found on PATH or in pyenv: ")
    assert f"set {ENV_VAR} to the path of a CPython 3.13 interpreter" in str(raised.value)


def test_the_module_prints_an_interpreter_of_the_runtimes_version() -> None:
    """What the Makefile calls: `--version` is RUNTIME's, and the printed path is a real interpreter of it."""
    run = [sys.executable, "-m", "infra.lambda_python"]
    version = subprocess.run([*run, "--version"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert version.strip() == python_version(RUNTIME)
    found = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    assert version_of(found) == python_version(RUNTIME)


def test_the_module_fails_with_the_hint_when_python_lambda_is_wrong(tmp_path: Path) -> None:
    wrong = fake_python(tmp_path / "python3.12", "3.12 1")
    result = subprocess.run(
        [sys.executable, "-m", "infra.lambda_python"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, ENV_VAR: str(wrong)},
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert f"{ENV_VAR}={wrong} is Python 3.12" in result.stderr
