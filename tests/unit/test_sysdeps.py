"""``.ci/sysdeps.sh``: what ``make test`` and ``make run`` would install on Debian, read with
its dry run on a PATH that lacks Xvfb (nothing is installed)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "sysdeps.sh"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Debian only")


def _dry_run(tmp_path: Path, *args: str, ldconfig_on_path: bool = True) -> str:
    tools = tmp_path / ("bin" if ldconfig_on_path else "user-bin")
    tools.mkdir(exist_ok=True)
    for tool in ("bash", "uname", "grep", "id", "apt-get") + (
            ("ldconfig",) if ldconfig_on_path else ()):
        found = shutil.which(tool) or shutil.which(tool, path="/sbin:/usr/sbin")
        if found and not (tools / tool).exists():
            (tools / tool).symlink_to(found)
    env = dict(os.environ, PATH=str(tools), WILDID_SYSDEPS_DRY_RUN="1")
    out = subprocess.run([str(tools / "bash"), str(SCRIPT), *args], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out
    return out.stdout


def test_the_tests_want_xvfb_and_the_app_does_not(tmp_path: Path) -> None:
    assert "xvfb" in _dry_run(tmp_path).split()
    app = _dry_run(tmp_path, "app")
    assert "xvfb" not in app.split() and "xauth" not in app.split()


def test_a_users_path_without_sbin_finds_the_same_libraries(tmp_path: Path) -> None:
    """ldconfig is in /sbin, which a Debian user's PATH lacks: every library then looked
    missing and `make run` asked for sudo to install them all, each time."""
    if not Path("/sbin/ldconfig").exists():
        pytest.skip("no /sbin/ldconfig here")
    assert _dry_run(tmp_path, "app", ldconfig_on_path=False) == _dry_run(tmp_path, "app")
