"""The CLI's allocator setting (satasim_atsn.runtime): applied by the entry point, refusable, harmless."""

from __future__ import annotations

import platform
import sys

import pytest

from satasim_atsn import cli, runtime

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


@pytest.mark.parametrize("value", ["1", "yes"])
def test_opt_out_leaves_the_allocator_alone(monkeypatch, value):
    monkeypatch.setenv(runtime.OPT_OUT_VARIABLE, value)
    assert runtime.keep_freed_memory() is False


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
@pytest.mark.parametrize("value", [None, "", "0"])
def test_glibc_accepts_the_setting(monkeypatch, value):
    if value is None:
        monkeypatch.delenv(runtime.OPT_OUT_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(runtime.OPT_OUT_VARIABLE, value)
    assert runtime.keep_freed_memory() is True


def test_entry_point_applies_it_before_running_a_command(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append("mallopt") or True)
    with pytest.raises(SystemExit) as ended:
        cli.main(["--version"])
    assert ended.value.code == 0
    assert calls == ["mallopt"]
    assert "satasim" in capsys.readouterr().out
