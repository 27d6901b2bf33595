"""The import contracts in .importlinter hold: no import up a tier, no cycle between subpackages,
serving free of training code, tfmot through its public API; every module sits in a tier; and
the contracts do catch each kind of violation (checked on a copy of the package)."""

import configparser
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = ".importlinter"
# `lint-imports --no-cache CONFIG`, run with this interpreter (the venv's import-linter).
LINT = [sys.executable, "-c",
        "import sys; from importlinter.cli import lint_imports_command; lint_imports_command()",
        "--no-cache", CONFIG]


def lint_imports(cwd):
    """(exit status, report) of lint-imports on the package and .importlinter under `cwd`."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "200"}
    result = subprocess.run(LINT, cwd=cwd, capture_output=True, text=True, timeout=120, env=env)
    return result.returncode, result.stdout + result.stderr


def tier_layers():
    """The tiers contract's layers, top first, each a list of module names."""
    parser = configparser.ConfigParser(inline_comment_prefixes=None)
    parser.read(os.path.join(ROOT, CONFIG))
    layers = []
    for line in parser["importlinter:contract:tiers"]["layers"].splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            layers.append([name.strip().strip("()") for name in re.split(r"[|:]", line)])
    return layers


def test_the_contracts_are_kept():
    status, report = lint_imports(ROOT)
    assert status == 0 and "0 broken" in report, f"lint-imports {CONFIG}:\n{report}"


def test_every_module_is_in_a_tier():
    placed = [name for layer in tier_layers() for name in layer]
    unplaced = []
    for folder, dirs, files in os.walk(os.path.join(ROOT, "electra_tf")):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        package = os.path.relpath(folder, ROOT).replace(os.sep, ".")
        for file in files:
            if not file.endswith(".py") or file == "__init__.py":
                continue
            module = f"{package}.{file[:-3]}"
            if not any(module == name or module.startswith(name + ".") for name in placed):
                unplaced.append(module)
    assert not unplaced, (
        f"{unplaced} are in no tier of the tiers contract in {CONFIG}: add each to the layer of "
        "what it imports and is imported by (jobs, conversion, task models and pretrainers, ...)."
    )


# A module added to a copy of the package, and the contract it must break.
VIOLATIONS = {
    "upward import": (
        "electra_tf/layers/upward.py", "import electra_tf.models.electra_encoder\n", "Tiers"),
    "cycle": (  # compression imports export already; both are jobs, so only the cycle is wrong
        "electra_tf/export/cycle.py", "import electra_tf.compression.pruning\n",
        "No import cycle between the subpackages"),
    "private tfmot": (
        "electra_tf/layers/private_tfmot.py",
        "from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper\n",
        "tfmot through its public API only"),
    "serving imports a model": (
        "electra_tf/serving/model.py", "from electra_tf.models import presets\n",
        "Serving reads exported SavedModels only"),
}


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory):
    """The package's Python files, .importlinter and the contract type, in a fresh folder."""
    root = tmp_path_factory.mktemp("contracts")
    shutil.copytree(os.path.join(ROOT, "electra_tf"), root / "electra_tf",
                    ignore=lambda folder, names: [n for n in names if not (
                        n.endswith(".py") or os.path.isdir(os.path.join(folder, n)))]
                    + ["__pycache__"])
    shutil.copy(os.path.join(ROOT, CONFIG), root / CONFIG)
    (root / "tests").mkdir()
    shutil.copy(os.path.join(ROOT, "tests", "import_contracts.py"), root / "tests")
    return root


@pytest.mark.parametrize("kind", sorted(VIOLATIONS))
def test_a_violation_breaks_its_contract(package_copy, kind):
    path, source, contract = VIOLATIONS[kind]
    violating = package_copy / path
    violating.write_text(source)
    try:
        status, report = lint_imports(package_copy)
    finally:
        violating.unlink()
    module = path[:-3].replace("/", ".")
    assert status != 0, f"{kind} ({module}) passed lint-imports:\n{report}"
    broken = report[report.index("Broken contracts"):]
    assert re.search(rf"^{re.escape(contract)}.*BROKEN", report, re.MULTILINE), report
    assert module.split(".")[1] in broken, report  # the report names the subpackage
