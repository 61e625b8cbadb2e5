"""Engine-specific SQL lives in storage/dialect.py and nowhere else."""

from __future__ import annotations

from pathlib import Path

import hearth

ROOT = Path(hearth.__file__).parent


def test_only_dialect_module_imports_sqlalchemy_dialects() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in ROOT.rglob("*.py")
        if path.name != "dialect.py" and "sqlalchemy.dialects" in path.read_text()
    ]
    assert offenders == []
