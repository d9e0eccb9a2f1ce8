"""runtime.kernel_cache and matplotlib_config: the kernels and the plots start, quietly, even where numba and
matplotlib have no writable cache location (a read-only install, a read-only HOME): a private temp directory is used
or, failing that, the kernels compile without a cache."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from numba.core import config

from satasim_atsn import runtime


@pytest.fixture
def clean_cache_setting(monkeypatch, tmp_path):
    """No cache setting, and the temp directory in ``tmp_path``. The code under test puts its choice in
    ``os.environ`` itself (for worker processes), and ``monkeypatch.delenv`` of an absent variable records nothing
    to undo, so both variables are put back by hand: left set, they sent every later worker process and
    subprocess of the suite to a cold numba cache and a fresh matplotlib font cache (a 4 s sweep test took 30 s;
    tests/conftest.py now fails any test that leaves them changed)."""
    saved = {name: os.environ.get(name) for name in ("NUMBA_CACHE_DIR", "MPLCONFIGDIR")}
    monkeypatch.setattr(config, "CACHE_DIR", "")
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setattr(runtime.tempfile, "gettempdir", lambda: str(tmp_path))
    yield tmp_path
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _writable_only(monkeypatch, allowed: Path) -> None:
    """Every directory but those under ``allowed`` refuses new files, as a read-only install and HOME do."""
    real = runtime._can_write
    monkeypatch.setattr(runtime, "_can_write", lambda d: Path(d).is_relative_to(allowed) and real(d))


def test_a_writable_source_tree_is_used_as_numba_would(clean_cache_setting):
    assert runtime.kernel_cache.__wrapped__() is True
    assert config.CACHE_DIR == "" and "NUMBA_CACHE_DIR" not in os.environ


def test_read_only_install_and_home_cache_in_a_private_temp_directory(clean_cache_setting, monkeypatch):
    tmp = clean_cache_setting
    _writable_only(monkeypatch, tmp)
    monkeypatch.setattr(config, "CACHE_DIR", "/proc/not-a-cache")  # a NUMBA_CACHE_DIR that cannot be written
    assert runtime.kernel_cache.__wrapped__() is True
    chosen = Path(config.CACHE_DIR)
    assert chosen.parent == tmp and os.environ["NUMBA_CACHE_DIR"] == str(chosen)  # worker processes inherit it
    assert chosen.stat().st_mode & 0o077 == 0


def test_a_temp_directory_another_user_could_fill_is_not_used(clean_cache_setting, monkeypatch):
    tmp = clean_cache_setting
    _writable_only(monkeypatch, tmp)
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    shared = tmp / f"satasim-numba-cache-{uid}"
    shared.mkdir()
    shared.chmod(0o777)
    assert runtime.kernel_cache.__wrapped__() is False  # compile in the process rather than load foreign code
    assert config.CACHE_DIR == ""


def test_nowhere_to_write_compiles_without_a_cache(clean_cache_setting, monkeypatch):
    monkeypatch.setattr(runtime, "_can_write", lambda d: False)

    def no_temp():
        raise FileNotFoundError("No usable temporary directory")

    monkeypatch.setattr(runtime.tempfile, "gettempdir", no_temp)
    assert runtime.kernel_cache.__wrapped__() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the XDG rule is Linux's")
def test_matplotlib_gets_a_private_config_directory_when_home_is_read_only(clean_cache_setting, monkeypatch):
    """With a read-only HOME matplotlib made a new temp directory in every process and logged two warning lines,
    even under --quiet."""
    tmp = clean_cache_setting
    monkeypatch.delenv("MPLCONFIGDIR", raising=False)
    _writable_only(monkeypatch, tmp)
    runtime.matplotlib_config()
    chosen = Path(os.environ["MPLCONFIGDIR"])
    assert chosen.parent == tmp and chosen.stat().st_mode & 0o077 == 0


def test_a_writable_matplotlib_directory_is_left_alone(clean_cache_setting, monkeypatch):
    monkeypatch.setenv("MPLCONFIGDIR", str(clean_cache_setting / "mine"))
    runtime.matplotlib_config()
    assert os.environ["MPLCONFIGDIR"] == str(clean_cache_setting / "mine")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the XDG rule is Linux's")
def test_nowhere_for_matplotlib_to_write_is_one_line(clean_cache_setting, monkeypatch):
    """With no writable temp directory either, matplotlib's own fallback ended the import in a 60-line OSError."""
    from satasim_atsn.errors import SatasimError

    monkeypatch.delenv("MPLCONFIGDIR", raising=False)
    monkeypatch.setattr(runtime, "_can_write", lambda d: False)
    with pytest.raises(SatasimError, match=r"MPLCONFIGDIR: matplotlib needs a writable directory.*set MPLCONFIGDIR"):
        runtime.matplotlib_config()
    assert "MPLCONFIGDIR" not in os.environ
