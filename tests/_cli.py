"""Test helper for the command line: a call that must fail the way a user should see it."""

from __future__ import annotations

import pytest

from allnc_edu.__main__ import main


def fails(argv: list[str], capsys) -> str:
    """Run ``main(argv)``; it must exit with status 2 and one line on stderr (returned)."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err
