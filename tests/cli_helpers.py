"""What the CLI tests share: run a command that must end in the one-line user error."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from satasim_atsn.cli import main


def cli_runner() -> CliRunner:
    """A CliRunner whose results keep stderr apart from stdout with any click setup.cfg admits: click 8.1 mixes
    them unless told (``result.stderr`` then raises), click >= 8.2 always keeps them apart and has no such
    argument."""
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:
        return CliRunner()


def one_line_error(argv: list[str], capsys) -> str:
    """Run ``satasim argv``, which must exit with code 2 and one line on stderr (no traceback); return that line."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert exc.value.code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]
