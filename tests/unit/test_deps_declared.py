"""Declared-file readers and index helpers: pure pieces, exact results."""

from __future__ import annotations

from pathlib import Path

from runner.deps.declared import _conda_spec, _poetry_constraint, find_declared, load_declared
from runner.deps.index import choose_newest, pip_settings, pypi_names

LINUX_311 = {
    "python_version": "3.11",
    "python_full_version": "3.11.7",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_machine": "x86_64",
}


def test_poetry_constraints() -> None:
    assert _poetry_constraint("^1.2.3") == ">=1.2.3,<2"
    assert _poetry_constraint("^0.2.3") == ">=0.2.3,<0.3"
    assert _poetry_constraint("~1.2") == ">=1.2,<1.3"
    assert _poetry_constraint("1.4") == "==1.4"
    assert _poetry_constraint("*") == ""
    assert _poetry_constraint(">=1, <2") == ">=1,<2"


def test_conda_specs() -> None:
    assert _conda_spec("numpy=1.26.4=py311h_0") == ("numpy", "==1.26.4.*")
    assert _conda_spec("conda-forge::scipy>=1.11") == ("scipy", ">=1.11")
    assert _conda_spec("pandas 2.1.*") == ("pandas", "==2.1.*")
    assert _conda_spec("requests") == ("requests", "")


def test_requirements_file_options_and_problems(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        "Django[bcrypt] >= 4.2 ; python_version >= '3.8'\n"
        "flask==3.0.0 \\\n    --hash=sha256:abc\n"
        "--index-url https://mirror.example/simple\n"
        "--pre\n"
        "-c constraints.txt\n"
        "-e git+https://github.com/org/tool.git@v1#egg=Tool_Kit\n"
        "-e ../sibling\n"
        "git+https://github.com/org/lib.git@abc123#egg=lib\n"
        "https://example.org/pkgs/foo-1.0-py3-none-any.whl\n"
        "./missing/bar-1.0.tar.gz\n"
        "not a requirement !!\n"
        "--no-deps\n"
    )
    declared = load_declared(tmp_path / "requirements.txt", root=tmp_path, marker_env=LINUX_311, installed=frozenset())
    assert [r.line for r in declared.requirements] == [
        "django[bcrypt] >= 4.2 ; python_version >= '3.8'",
        "flask==3.0.0      --hash=sha256:abc",
        "https://example.org/pkgs/foo-1.0-py3-none-any.whl",
        "git+https://github.com/org/lib.git@abc123#egg=lib",
        "-e git+https://github.com/org/tool.git@v1#egg=Tool_Kit",
    ]
    assert [r.name for r in declared.requirements] == ["django", "flask", "foo", "lib", "tool-kit"]
    assert declared.pip_options == ["--index-url https://mirror.example/simple", "--pre"]
    assert declared.warnings == [
        "requirements.txt:6: constraints file constraints.txt is not applied in the image: dropped",
        "requirements.txt:8: editable folder ../sibling is not the project and cannot be installed in the image: skipped",
        "requirements.txt:11: ./missing/bar-1.0.tar.gz is a local folder or a missing file and cannot be installed in the image: skipped",
        "requirements.txt:12: cannot read the requirement 'not a requirement !!': skipped",
        "requirements.txt:13: pip option --no-deps is not supported in a lock: dropped",
    ]
    assert declared.notes == []  # open versions are pinned later (compose), not noted here
    assert [(d.at, d.what, d.reason) for d in declared.dropped] == [
        ("requirements.txt:6", "-c constraints.txt", "a constraints file"),
        ("requirements.txt:8", "-e ../sibling", "an editable folder outside the project"),
        ("requirements.txt:11", "./missing/bar-1.0.tar.gz", "a local folder or a missing file"),
        ("requirements.txt:12", "not a requirement !!", "not a requirement pip can read"),
        ("requirements.txt:13", "--no-deps", "an unsupported pip option"),
    ]
    assert [o.at for r in declared.requirements for o in r.provenance] == [
        "requirements.txt:1",
        "requirements.txt:2",
        "requirements.txt:10",
        "requirements.txt:9",
        "requirements.txt:7",
    ]


def test_find_declared_prefers_lock_files_and_skips_tool_only_pyproject(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.black]\nline-length = 100\n")
    assert find_declared(tmp_path, ["pyproject.toml", "train.py"]) is None
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndynamic = ["dependencies"]\ndependencies = []\n')
    assert find_declared(tmp_path, ["pyproject.toml"]) is None
    assert find_declared(tmp_path, ["pyproject.toml", "requirements.txt", "uv.lock"]) == tmp_path / "uv.lock"


def test_choose_newest_respects_python_platform_yanked_and_prereleases() -> None:
    files = [
        {"filename": "pkg-2.0.tar.gz", "requires-python": ">=3.12"},
        {"filename": "pkg-1.9-cp312-cp312-manylinux2014_x86_64.whl"},
        {"filename": "pkg-1.8-cp311-cp311-win_amd64.whl"},
        {"filename": "pkg-1.7-cp311-cp311-manylinux_2_17_x86_64.whl", "yanked": True},
        {"filename": "pkg-1.7rc1.tar.gz"},
        {"filename": "pkg-1.6-cp38-abi3-manylinux2014_x86_64.whl"},
        {"filename": "pkg-1.5-py3-none-any.whl"},
    ]
    assert choose_newest(files, "3.11.7") == "1.6"
    assert choose_newest(files, "3.12.1") == "2.0"
    assert choose_newest([], "3.11.7") is None


def test_pypi_names_prefer_curated_mapping() -> None:
    assert pypi_names("cv2") == ("opencv-python", "cv2")
    assert pypi_names("skimage.io") == ("scikit-image", "skimage")
    assert pypi_names("attr") == ("attrs", "attr")
    assert pypi_names("sklearn.svm")[0] == "scikit-learn"
    assert pypi_names("google.cloud.storage") == ("google-cloud-storage", "google")
    assert pypi_names("google.protobuf.message") == ("protobuf", "google")
    assert pypi_names("wandb") == ("wandb",)


def test_pip_settings_read_like_pip(tmp_path: Path) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = https://mirror.example/simple/\ncert = /etc/ca.pem\n")
    settings = pip_settings({"HOME": str(tmp_path), "PIP_CONFIG_FILE": str(conf)})
    assert (settings.index_url, settings.cert) == ("https://mirror.example/simple", "/etc/ca.pem")
    env = {"HOME": str(tmp_path), "PIP_CONFIG_FILE": str(conf), "PIP_INDEX_URL": "https://other/simple"}
    assert pip_settings(env).index_url == "https://other/simple"
