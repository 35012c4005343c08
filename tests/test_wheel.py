"""geomlib as Colab gets it: the wheel, installed into a fresh virtual environment that already
has torch (and the notebook tools), used from outside the repository: a tiny chapter runs with it,
and the shipped data (the seed study the path-finding chapter draws) comes with the package."""
import json
import site
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def _run(*cmd, **kw):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=600, **kw)
    assert r.returncode == 0, f"{cmd}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def test_the_wheel_works_from_a_fresh_environment_outside_the_repository(tmp_path):
    wheels = tmp_path / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheels, ROOT)
    wheel = next(wheels.glob("geomlib-*.whl"))
    env_dir = tmp_path / "colab"
    _run(sys.executable, "-m", "venv", "--without-pip", env_dir)
    py = env_dir / "bin" / "python"
    # "already has torch": this environment sees the packages of ours (torch, numpy, papermill...)
    # through a path entry, but not our editable geomlib (its import hook is not loaded from there)
    fresh_site = Path(_run(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    (fresh_site / "preinstalled.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    probe = "import geomlib; print(geomlib.__file__)"
    assert _run(py, "-c", "import importlib.util as u; print(u.find_spec('geomlib'))", cwd=outside).stdout.strip() == "None"
    _run(sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", fresh_site, wheel)
    where = Path(_run(py, "-c", probe, cwd=outside).stdout.strip())
    assert fresh_site in where.parents and ROOT not in where.parents  # the installed copy, not the sources

    study = _run(py, "-c", "from geomlib.cache import shipped_data; print(shipped_data('pathstar_seed_study.json'))",
                 cwd=outside).stdout.strip()
    assert fresh_site in Path(study).parents and json.loads(Path(study).read_text())

    chapter = outside / "associative_vs_geometric.ipynb"
    chapter.write_bytes((ROOT / "book" / chapter.name).read_bytes())
    env = {"GEOMLIB_LEDGER": str(outside / "ledger.json"), "GEOMLIB_CACHE": str(outside / "cache"),
           "GEOMLIB_PROGRESS": "0", "PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    _run(py, "-m", "papermill", chapter, outside / "out.ipynb", "-k", "python3", "--cwd", outside, cwd=outside, env=env)
    ledger = json.loads((outside / "ledger.json").read_text())
    assert ledger and all(r["status"] == "pass" for r in ledger.values())
    executed = nbformat.read(outside / "out.ipynb", as_version=4)
    assert any(o.get("output_type") == "display_data" for c in executed.cells for o in c.get("outputs", []))
