"""geomlib as Colab gets it: the wheel, installed into a fresh virtual environment that already
has torch (and the notebook tools), used from outside the repository: a tiny chapter runs with it,
and the shipped data comes with the package (the path-finding chapter's seed-study figure, its
own cell, renders from it)."""
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
    wheel = next(wheels.glob("geometric_memory_book-*.whl"))
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
    # the long runs in data/<folder>/ travel with the wheel too (the chapter draws them in Colab)
    runs = _run(py, "-c", "from geomlib.cache import shipped_files; print(len(shipped_files('pathstar_release')))",
                cwd=outside).stdout.strip()
    assert int(runs) == len(list((ROOT / "data" / "pathstar_release").glob("*.json"))) > 0

    # the Methods appendix's seed-study figure, its own cell, drawn from the installed data
    source = nbformat.read(ROOT / "book" / "methods.ipynb", as_version=4)
    figure_cell = next(c for c in source.cells if c.cell_type == "code" and "pathstar_seed_study.json" in c.source)
    figure_nb = nbformat.v4.new_notebook()
    figure_nb.cells = [nbformat.v4.new_code_cell("import matplotlib.pyplot as plt\nimport numpy as np\n\n"
                                                 "from geomlib import plots, studies\n\nplots.style()"),
                       nbformat.v4.new_code_cell(figure_cell.source)]
    nbformat.write(figure_nb, outside / "seed_study.ipynb")
    env = {"GEOMLIB_LEDGER": str(outside / "ledger.json"), "GEOMLIB_CACHE": str(outside / "cache"),
           "GEOMLIB_PROGRESS": "0", "PATH": f"{env_dir / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}
    _run(py, "-m", "papermill", outside / "seed_study.ipynb", outside / "seed_study.out.ipynb", "-k", "python3",
         cwd=outside, env=env)
    drawn = nbformat.read(outside / "seed_study.out.ipynb", as_version=4).cells[-1].outputs
    assert any("image/png" in o.get("data", {}) for o in drawn), drawn
    assert "not available" not in json.dumps(drawn)

    chapter = outside / "associative_vs_geometric.ipynb"
    chapter.write_bytes((ROOT / "book" / chapter.name).read_bytes())
    _run(py, "-m", "papermill", chapter, outside / "out.ipynb", "-k", "python3", "--cwd", outside, cwd=outside, env=env)
    ledger = json.loads((outside / "ledger.json").read_text())
    assert ledger and all(r["status"] == "pass" for r in ledger.values())
    executed = nbformat.read(outside / "out.ipynb", as_version=4)
    assert any(o.get("output_type") == "display_data" for c in executed.cells for o in c.get("outputs", []))
