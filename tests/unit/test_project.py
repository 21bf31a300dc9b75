"""runner.project: root discovery and the build-context listing."""

from __future__ import annotations

import os
from pathlib import Path

from runner.project import compile_gitignore, find_root, list_files


def _tree(root: Path, paths: dict[str, str]) -> None:
    for rel, text in paths.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def test_find_root_git_folder_and_fallback(tmp_path: Path) -> None:
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    _tree(tmp_path, {"repo/src/app/train.py": "", "loose/run.py": ""})
    assert find_root(tmp_path / "repo" / "src" / "app" / "train.py") == tmp_path / "repo"
    assert find_root(tmp_path / "loose" / "run.py") == tmp_path / "loose"


def test_find_root_git_file_worktree(tmp_path: Path) -> None:
    _tree(tmp_path, {"wt/.git": "gitdir: /elsewhere\n", "wt/a/b.py": ""})
    assert find_root(tmp_path / "wt" / "a" / "b.py") == tmp_path / "wt"


def test_gitignore_semantics(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            ".gitignore": "\n".join(
                [
                    "# comment",
                    "*.log",
                    "!keep.log",
                    "/data/",
                    "out/",
                    "docs/**/*.tmp",
                    "secret?.txt",
                    "anchored/file.txt",
                    "",
                ]
            ),
            "a.log": "",
            "keep.log": "",
            "sub/b.log": "",
            "data/x.csv": "",
            "sub/data/y.csv": "",
            "out/o.bin": "",
            "sub/out/o.bin": "",
            "out.txt": "",
            "docs/a/b/c.tmp": "",
            "docs/c.tmp": "",  # a/**/b matches a/b too
            "docs/c.md": "",
            "secret1.txt": "",
            "secret12.txt": "",
            "anchored/file.txt": "",
            "x/anchored/file.txt": "",
            "nested/.gitignore": "*.csv\n!important.csv\n",
            "nested/a.csv": "",
            "nested/important.csv": "",
            "nested/deeper/b.csv": "",
            "train.py": "",
        },
    )
    files = list_files(tmp_path).files
    assert files == (
        ".gitignore",
        "docs/c.md",
        "keep.log",
        "nested/.gitignore",
        "nested/important.csv",
        "out.txt",
        "secret12.txt",
        "sub/data/y.csv",
        "train.py",
        "x/anchored/file.txt",
    )


def test_git_cannot_reinclude_below_excluded_folder(tmp_path: Path) -> None:
    _tree(tmp_path, {".gitignore": "logs/\n!logs/keep.txt\n", "logs/keep.txt": "", "a.py": ""})
    assert list_files(tmp_path).files == (".gitignore", "a.py")


def test_dockerignore_anchored_and_exceptions(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            ".dockerignore": "*.md\ndata\n!data/small.csv\n**/*.bak\n",
            "README.md": "",
            "docs/guide.md": "",  # Docker patterns are anchored: *.md is top level only
            "data/big.csv": "",
            "data/small.csv": "",
            "a/b/c.bak": "",
            "train.py": "",
        },
    )
    assert list_files(tmp_path).files == (".dockerignore", "data/small.csv", "docs/guide.md", "train.py")


def test_runnerignore_has_the_last_word(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            ".gitignore": "data/\n.env\n",
            ".runnerignore": "!data/\nnotes.txt\n!.env\n",
            "data/x.csv": "",
            "notes.txt": "",
            ".env": "A=1",
            "train.py": "",
        },
    )
    pf = list_files(tmp_path)
    assert pf.files == (".env", ".gitignore", ".runnerignore", "data/x.csv", "train.py")
    assert pf.ignore_files == (".gitignore", ".runnerignore")


def test_skips_environments_caches_and_build_output(tmp_path: Path) -> None:
    _tree(
        tmp_path,
        {
            ".venv/lib/x.py": "",
            "venv/lib/y.py": "",
            "myenv/pyvenv.cfg": "",
            "myenv/lib/z.py": "",
            "condaenv/conda-meta/history": "",
            "__pycache__/a.cpython-311.pyc": "",
            "pkg/mod.pyc": "",
            "pkg/mod.py": "",
            ".mypy_cache/x": "",
            ".pytest_cache/x": "",
            ".tox/x": "",
            "build/lib/pkg/mod.py": "",
            "dist/pkg-0.1.whl": "",
            "pkg/build/__init__.py": "",  # a subpackage called build is code
            "pkg.egg-info/PKG-INFO": "",
            "node_modules/x/index.js": "",
            "nb/.ipynb_checkpoints/a-checkpoint.ipynb": "",
            "nb/a.ipynb": "",
        },
    )
    pf = list_files(tmp_path)
    assert pf.files == ("nb/a.ipynb", "pkg/build/__init__.py", "pkg/mod.py")
    assert pf.environments == (".venv/", "condaenv/", "myenv/", "venv/")


def test_runners_own_home_is_never_part_of_a_project(tmp_path: Path) -> None:
    # a RUNNER_HOME may be anywhere, a project folder included
    _tree(
        tmp_path,
        {
            ".runner/runner.db": "",
            ".runner/runs/r1/build.log": "",
            ".runner/cache/contexts/p-0/project/train.py": "",
            "state/runner.db": "",
            "state/runs/r2/exp0.log": "",
            "data/runner.db": "",  # a project's own database of that name, without runs/: kept
            "train.py": "",
        },
    )
    assert list_files(tmp_path).files == ("data/runner.db", "train.py")


def test_sensitive_files_are_excluded_and_listed(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    _tree(
        tmp_path,
        {
            ".env": "",
            ".env.production": "",
            "config/id_rsa": "",
            "config/id_ed25519.pub": "",
            "certs/server.pem": "",
            "certs/server.key": "",
            ".aws/credentials": "",
            ".kube/config": "",
            ".ssh/known_hosts": "",
            ".docker/config.json": "",
            ".docker/other.json": "",
            ".netrc": "",
            ".pypirc": "",
            ".gitignore": "ignored.pem\n",
            "ignored.pem": "",
            "envelope.py": "",
            "train.py": "",
        },
    )
    pf = list_files(tmp_path)
    assert pf.files == (".docker/other.json", ".gitignore", "envelope.py", "train.py")
    assert pf.excluded == (
        ".aws/",
        ".docker/config.json",
        ".env",
        ".env.production",
        ".git/",
        ".kube/",
        ".netrc",
        ".pypirc",
        ".ssh/",
        "certs/server.key",
        "certs/server.pem",
        "config/id_ed25519.pub",
        "config/id_rsa",
    )


def test_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    _tree(outside, {"secret.txt": "", "lib/m.py": ""})
    root = tmp_path / "proj"
    _tree(root, {"real.py": "", "pkg/a.py": ""})
    os.symlink(root / "real.py", root / "alias.py")
    os.symlink(outside / "secret.txt", root / "leak.txt")
    os.symlink(outside / "lib", root / "lib")
    os.symlink(root / "pkg", root / "pkg2")
    os.symlink(root / "missing", root / "dangling")
    pf = list_files(root)
    assert pf.files == ("alias.py", "pkg/a.py", "real.py")
    assert pf.skipped_links == ("dangling", "leak.txt", "lib", "pkg2")


def test_compile_gitignore_double_star() -> None:
    rules = compile_gitignore("**/logs\nfoo/**\na/**/b\n")
    assert rules.decide("logs", is_dir=True) is True
    assert rules.decide("x/y/logs", is_dir=False) is True
    assert rules.decide("foo/x/y", is_dir=False) is True
    assert rules.decide("foo", is_dir=True) is None
    assert rules.decide("a/b", is_dir=False) is True
    assert rules.decide("a/x/y/b", is_dir=False) is True
    assert rules.decide("xa/b", is_dir=False) is None
