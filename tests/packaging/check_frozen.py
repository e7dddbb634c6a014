"""Check a PyInstaller build of wildid as a user would run it (``make package`` runs this).

    .venv/bin/python -m tests.packaging.check_frozen dist/wildid

Why: the frozen app imports only what PyInstaller's analysis found, and the app loads its
pages, CLI command modules and the engine by name. A build that imports fine can still open
with pages missing, or fail at the first identification because a model or data file was not
collected. So this runs the built programs themselves, in a fresh home folder, with photos it
generates: the CLI names two generated animals as nyala (the profile that runs every shipped
model: the re-id embedder, ALIKED, LightGlue), imports a second sighting of one of them with a
corrupt file, and must skip the file and rank the right animal first, re-ranked by LightGlue;
``wildid models`` must list the shipped models as ok and ``wildid self-test`` pass; the
windowed program starts offscreen and its log must show every page loaded. Exits 1 naming
what failed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.photofactory import make_animal_pair  # noqa: E402
from wildid.gui.pages import PAGES  # noqa: E402

GUI_SECONDS = 25.0  # long enough for the window and every page to be built


def run(program: Path, *args: str, env: dict[str, str]) -> str:
    out = subprocess.run([str(program), *args], env=env, capture_output=True, text=True,
                         timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"FAILED: {program.name} {' '.join(args)} exited {out.returncode}\n"
                         f"{out.stdout}\n{out.stderr}")
    return out.stdout


def check_cli(dist: Path, home: Path, env: dict[str, str]) -> list[str]:
    cli = dist / "wildid"
    done = [f"version: {run(cli, '--version', env=env).strip()}"]
    models = run(cli, "models", env=env)
    rows = [line for line in models.splitlines() if " shipped " in line]
    if not rows or any("ok" not in line.split() for line in rows):
        raise SystemExit(f"FAILED: the shipped models are not all ok:\n{models}")
    done.append(f"models: {len(rows)} shipped, all ok")
    checked = json.loads(run(cli, "self-test", "--json", env=env))
    if not checked["ok"]:
        raise SystemExit(f"FAILED: wildid self-test: {json.dumps(checked, indent=1)}")
    done.append(f"self-test: {len(checked['steps'])} steps ok")
    first, second = make_animal_pair(home / "photos", 61, seeds=(3, 4), width=800, height=600)
    other, _ = make_animal_pair(home / "photos", 62, seeds=(5, 6), width=800, height=600)
    card = home / "card"
    card.mkdir()
    second.path.rename(card / second.path.name)
    (card / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not the rest of a photo")
    catalog = str(home / "catalog")
    for shot, name in ((first, "Stripy"), (other, "Spots")):
        run(cli, "--catalog", catalog, "import", "--species", "nyala", str(shot.path), env=env)
        listed = json.loads(run(cli, "--catalog", catalog, "encounters", "--json", env=env))
        unnamed = [e["id"] for e in listed if e["individual_id"] is None]
        run(cli, "--catalog", catalog, "name", unnamed[0], name, env=env)
    report = json.loads(run(cli, "--catalog", catalog, "import", "--species", "nyala", "--json",
                            str(card), env=env))
    if len(report.get("skipped", [])) != 1:
        raise SystemExit(f"FAILED: the corrupt photo was not reported as skipped: {report}")
    matches = json.loads(run(cli, "--catalog", catalog, "match", "--all", "--json", env=env))
    ranked = [[c["name"] for c in m["candidates"]] for m in matches]
    if len(ranked) != 1 or ranked[0][:1] != ["Stripy"]:
        raise SystemExit(f"FAILED: the second sighting of Stripy does not rank Stripy first "
                         f"(two animals known): {json.dumps(matches)[:2000]}")
    best = matches[0]["candidates"][0]
    # the nyala profile: keypoints placed by the re-id model, re-ranked by LightGlue (ALIKED)
    if best["raw"].get("lightglue", 0.0) <= 0.0:
        raise SystemExit(f"FAILED: the learned re-ranking did not run: {best['raw']}")
    done.append(f"import, name, match (nyala profile): the second sighting ranks Stripy first "
                f"of {len(ranked[0])} ({best['score']:.2f}, {best['n_inliers']} inliers, "
                f"LightGlue {best['raw']['lightglue']:.1f}); corrupt photo skipped")
    return done


def check_gui(dist: Path, home: Path, env: dict[str, str]) -> list[str]:
    env = dict(env, QT_QPA_PLATFORM="offscreen")
    proc = subprocess.Popen([str(dist / "wildid-gui"), "-v"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(GUI_SECONDS)
    if proc.poll() is not None:
        raise SystemExit(f"FAILED: wildid-gui exited by itself ({proc.returncode}):\n"
                         f"{proc.stdout.read() if proc.stdout else ''}")
    proc.send_signal(signal.SIGTERM)
    try:
        output = proc.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        output = proc.communicate()[0]
    log_file = home / "logs" / "wildid.log"
    log = log_file.read_text() if log_file.exists() else ""
    if "starting on" not in log:
        raise SystemExit(f"FAILED: wildid-gui wrote no start line to {log_file}:\n{output}")
    problems = [line for line in log.splitlines()
                if "is not available" in line or "Traceback" in line or " ERROR " in line]
    if problems:
        raise SystemExit("FAILED: the app's log says:\n" + "\n".join(problems))
    return [f"app: started offscreen with all {len(PAGES)} pages "
            f"({', '.join(p.title for p in PAGES)}), no error in its log"]


def main() -> int:
    dist = Path(sys.argv[1] if len(sys.argv) > 1 else REPO / "dist" / "wildid").resolve()
    for name in ("wildid", "wildid-gui"):
        if not (dist / name).exists():
            raise SystemExit(f"FAILED: {dist / name} does not exist: build with `make package`")
    with tempfile.TemporaryDirectory(prefix="wildid-frozen-") as tmp:
        home = Path(tmp)
        # a fresh user: own home, data, settings and log folders; no Python on the path
        env = {"HOME": str(home), "WILDID_HOME": str(home), "PATH": "/usr/bin:/bin",
               "LANG": os.environ.get("LANG", "C.UTF-8"), "WILDID_REVIEWER": "frozen-check"}
        if "DISPLAY" in os.environ:
            env["DISPLAY"] = os.environ["DISPLAY"]
        done = check_cli(dist, home, env) + check_gui(dist, home, env)
    print("frozen build OK:", dist)
    for line in done:
        print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
