"""A child process of the runner: pytest with a mutated copy of `archiver` ahead of the installed one.

`python -m tests.mutants.boot ROOT PROBE PYTEST_ARGS...` puts ROOT (the folder holding the copy of the
package) first on sys.path before anything imports `archiver`, runs pytest, then writes to PROBE the file
of every `archiver` module it imported, so the runner can check that the copy, and only it, was tested.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    root, probe, *args = argv
    if any(name == "archiver" or name.startswith("archiver.") for name in sys.modules):
        raise SystemExit("archiver was imported before the mutated copy could shadow it")
    sys.path.insert(0, root)
    import pytest

    code = int(pytest.main(args))
    files = {
        name: getattr(module, "__file__", None)
        for name, module in list(sys.modules.items())
        if name == "archiver" or name.startswith("archiver.")
    }
    Path(probe).write_text(json.dumps(files))
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
