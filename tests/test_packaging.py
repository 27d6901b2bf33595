"""The package as a user gets it: a wheel and an sdist, installed into an environment without electra_tf.

`python -m build` makes both and `twine check` accepts them. A new virtual environment that has
electra_tf's dependencies but not electra_tf itself then runs a notebook, whose first cell must
install the wheel (through `ELECTRA_TF_PIP_SPEC`) before the rest runs, and the wheel's
`electra-tf quickstart --steps 50`, which needs the packaged corpus and vocabulary.

The dependencies are not downloaded again: the new environment sees this one's packages through a
folder of links that leaves electra_tf out, so pip finds every requirement satisfied and installs
only the wheel.
"""

import glob
import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
NOTEBOOK = os.path.join(ROOT, "notebooks", "pretraining.ipynb")
# Files the library reads at run time; a wheel without them installs but cannot run.
PACKAGED = ["electra_tf/preprocessing/assets/uncased_vocab.txt",
            "electra_tf/data/assets/northangerabbey.txt.gz",
            "electra_tf/data/assets/persuasion.txt.gz",
            "electra_tf/data/assets/sentiment/movie_train.tsv",
            "electra_tf/data/assets/sentiment/movie_dev.tsv",
            "electra_tf/data/assets/squad/squad_v1_sample.json",
            "electra_tf/serving/static/index.html"]


def run(command, **kwargs):
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, (
        f"{command} exited {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """A wheel and an sdist built from this checkout by `python -m build`."""
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", str(out), ROOT], cwd=ROOT)
    (wheel,) = glob.glob(str(out / "*.whl"))
    (sdist,) = glob.glob(str(out / "*.tar.gz"))
    return wheel, sdist


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory):
    """A new virtual environment with this one's dependencies but no electra_tf."""
    folder = tmp_path_factory.mktemp("fresh")
    venv = folder / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python = str(venv / "bin" / "python")
    site = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
               ).stdout.strip()
    # Links to every installed distribution except electra_tf (and no .pth files, which would
    # re-install this checkout's editable electra_tf through its import hook).
    links = folder / "dependencies"
    links.mkdir()
    here = sysconfig.get_paths()["purelib"]
    for name in os.listdir(here):
        if name.lower().startswith(("electra_tf", "__editable__", "_distutils_hack", "pip",
                                    "setuptools")) or name.endswith(".pth"):
            continue
        os.symlink(os.path.join(here, name), links / name)
    with open(os.path.join(site, "dependencies.pth"), "w") as f:
        f.write(str(links) + "\n")
    check = subprocess.run([python, "-c", "import electra_tf"], capture_output=True, text=True,
                           cwd=str(folder))
    assert check.returncode != 0, "the new environment must not have electra_tf yet"
    run([python, "-c", "import tensorflow, tf_keras, tensorflow_text, ipykernel"],
        cwd=str(folder))
    return venv


def test_build_makes_a_wheel_and_an_sdist_that_twine_accepts(dist):
    wheel, sdist = dist
    result = run([sys.executable, "-m", "twine", "check", "--strict", wheel, sdist])
    assert result.stdout.count("PASSED") == 2, result.stdout
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert not [path for path in PACKAGED if path not in names]
    assert not [name for name in names if name.startswith(("tests/", "benchmarks/"))]
    with tarfile.open(sdist) as archive:
        members = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert not [path for path in PACKAGED + ["README.md", "setup.cfg"] if path not in members]


def test_notebook_installs_the_wheel_and_runs_in_a_new_environment(dist, fresh_env, tmp_path):
    wheel, _ = dist
    kernels = tmp_path / "jupyter" / "kernels" / "fresh"
    kernels.mkdir(parents=True)
    with open(kernels / "kernel.json", "w") as f:  # a kernel that runs the new environment
        json.dump({"argv": [str(fresh_env / "bin" / "python"), "-m", "ipykernel_launcher",
                            "-f", "{connection_file}"],
                   "display_name": "fresh", "language": "python"}, f)
    environment = {
        "JUPYTER_PATH": str(tmp_path / "jupyter"),
        "ELECTRA_TF_PIP_SPEC": wheel,
        "ELECTRA_NOTEBOOK_STEPS": "4",
        "ELECTRA_NOTEBOOK_BATCH_SIZE": "4",
        "ELECTRA_NOTEBOOK_MAX_SEQ_LENGTH": "32",
        "ELECTRA_NOTEBOOK_OUTPUT_DIR": str(tmp_path / "run"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PIP_NO_INPUT": "1",
    }
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)  # the kernel inherits this process's environment
    try:
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        notebook.cells.append(nbformat.v4.new_code_cell(
            "print('electra_tf imported from', electra_tf.__file__)"))
        client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="fresh",
                                         resources={"metadata": {"path": str(tmp_path)}})
        client.execute()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    text = "\n".join(output.get("text", "") for cell in notebook.cells
                     for output in cell.get("outputs", []))
    assert f"installing {wheel}" in text  # the install branch ran
    assert f"electra_tf imported from {fresh_env}" in text  # ... and installed the wheel there
    assert "to step 4" in text  # the rest of the notebook ran after it
    assert (tmp_path / "run" / "discriminator" / "model.weights.h5").exists()


def test_quickstart_runs_from_the_installed_wheel(dist, fresh_env, tmp_path):
    wheel, _ = dist
    pip = [str(fresh_env / "bin" / "python"), "-m", "pip", "install", "-q", "--no-input"]
    run(pip + [wheel])  # again, in case this test runs alone; a no-op after the notebook test
    result = run([str(fresh_env / "bin" / "electra-tf"), "quickstart", "--steps", "50",
                  "--no-progress", "--output-dir", str(tmp_path / "quickstart")],
                 cwd=str(tmp_path), env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
                 timeout=900)
    assert "to step 50" in result.stdout, result.stdout[-2000:]
    assert "Replaced token detection on held-out text (persuasion.txt.gz" in result.stdout
    assert "rtd_auc" in result.stdout
    assert (tmp_path / "quickstart" / "discriminator" / "model.weights.h5").exists()
