"""The publishing workflow: valid YAML, runs the README's test command (the same as .ci/run),
uploads the book and deploys it to GitHub Pages from main; lint through pre-commit."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "book.yml"


def _ci_command() -> str:
    lines = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    return [ln for ln in lines if ln and not ln.startswith(("#", "set ", "cd "))][-1]


def test_workflow_is_valid_and_runs_the_ci_command():
    wf = yaml.safe_load(WORKFLOW.read_text())
    triggers = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads the key `on` as True
    assert {"push", "pull_request", "schedule"} <= set(triggers)
    assert triggers["schedule"][0]["cron"].split()[-1] != "*"  # weekly, not daily
    test = wf["jobs"]["test"]
    runs = [s.get("run", "").strip() for s in test["steps"]]
    assert _ci_command() == "make test" and _ci_command() in runs
    assert test["timeout-minutes"] <= 90
    uploads = [s for s in test["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    paths = uploads[0]["with"]["path"]
    assert "site/_build/html" in paths and "site/build/ledger.json" in paths and "data" in paths
    assert test["env"]["GEOMLIB_KEEP_BUILD"].endswith("/site")  # where tests/conftest.py keeps the build


def test_pages_deploy_only_from_main_after_the_tests():
    wf = yaml.safe_load(WORKFLOW.read_text())
    deploy = wf["jobs"]["deploy"]
    assert "refs/heads/main" in deploy["if"] and set(deploy["needs"]) == {"lint", "test"}
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert any(str(s.get("uses", "")).startswith("actions/deploy-pages") for s in deploy["steps"])
    pages = [s for s in wf["jobs"]["test"]["steps"] if str(s.get("uses", "")).startswith("actions/upload-pages")]
    assert pages and pages[0]["with"]["path"] == "site/_build/html" and "refs/heads/main" in pages[0]["if"]


def test_lint_runs_pre_commit_with_ruff():
    wf = yaml.safe_load(WORKFLOW.read_text())
    assert any("pre-commit run --all-files" in s.get("run", "") for s in wf["jobs"]["lint"]["steps"])
    hooks = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())["repos"]
    assert any(h["id"] == "ruff" for r in hooks for h in r["hooks"])


def test_a_job_runs_the_unit_tests_and_a_chapter_on_colabs_stack():
    """Colab runs a newer Python with an older torch than CI: a job on that stack catches a library
    call the older torch lacks."""
    wf = yaml.safe_load(WORKFLOW.read_text())
    job = wf["jobs"]["colab-stack"]
    steps = [s.get("run", "") + str(s.get("with", {})) for s in job["steps"]]
    assert any("'python-version': '3.13'" in s for s in steps)
    assert any('torch==2.11.*' in s and "whl/cpu" in s for s in steps)
    assert any('pytest -ra -m "not book"' in s for s in steps) and any("run_book.py --only" in s for s in steps)


def test_the_reader_ready_notebooks_go_to_the_branch_the_badges_open():
    import sys
    sys.path.insert(0, str(ROOT / "tools"))
    import notebooks

    wf = yaml.safe_load(WORKFLOW.read_text())
    job = wf["jobs"]["colab-branch"]
    assert "refs/heads/main" in job["if"] and set(job["needs"]) == {"lint", "test"}
    assert job["permissions"] == {"contents": "write"}
    script = "\n".join(s.get("run", "") for s in job["steps"])
    assert "site/_build/html/colab" in script and f"-b {notebooks.COLAB_BRANCH}" in script
    assert "git push -f" in script and script.rstrip().endswith(notebooks.COLAB_BRANCH)
