import hashlib
import io
import tarfile
from pathlib import Path

from runner.image import (
    ContextEntry,
    DigestCache,
    FileDigest,
    TagInputs,
    digest_entries,
    image_tag,
    normal_mode,
    write_context,
)


def inputs(**kw: object) -> TagInputs:
    base = dict(
        base_image_id="sha256:aaa",
        dockerfile="FROM x\n",
        lock="six==1.16.0\n",
        files=(FileDigest("project/a.py", 0o644, "11"), FileDigest("project/b.py", 0o755, "22")),
    )
    base.update(kw)
    return TagInputs(**base)  # type: ignore[arg-type]


def test_tag_is_deterministic_and_order_free() -> None:
    a = inputs()
    b = inputs(files=tuple(reversed(a.files)))
    assert image_tag(a) == image_tag(b)
    assert len(image_tag(a)) == 32


def test_tag_changes_with_every_input() -> None:
    tags = {
        image_tag(inputs()),
        image_tag(inputs(base_image_id="sha256:bbb")),
        image_tag(inputs(dockerfile="FROM y\n")),
        image_tag(inputs(lock="six==1.17.0\n")),
        image_tag(inputs(files=(FileDigest("project/a.py", 0o644, "12"),))),
        image_tag(inputs(files=(FileDigest("project/a.py", 0o755, "11"), FileDigest("project/b.py", 0o755, "22")))),
        image_tag(inputs(files=(FileDigest("project/c.py", 0o644, "11"), FileDigest("project/b.py", 0o755, "22")))),
    }
    assert len(tags) == 7


def test_normal_mode_keeps_only_the_exec_bit() -> None:
    assert normal_mode(0o100600) == 0o644
    assert normal_mode(0o100744) == 0o755


def test_context_tar_is_byte_identical_and_normalised(tmp_path: Path) -> None:
    f = tmp_path / "x.py"
    f.write_text("print(1)\n")
    entries = [ContextEntry("project/x.py", 0o644, source=f), ContextEntry("Dockerfile", 0o644, data=b"FROM x\n")]
    one, two = io.BytesIO(), io.BytesIO()
    write_context(one, entries)
    f.touch()  # a new mtime must not change the bytes
    write_context(two, list(reversed(entries)))
    assert one.getvalue() == two.getvalue()
    with tarfile.open(fileobj=io.BytesIO(one.getvalue())) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["Dockerfile", "project/x.py"]
        assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0, 0, "", "")}


def test_digest_cache_reuses_and_notices_changes(tmp_path: Path) -> None:
    f = tmp_path / "a.py"
    f.write_text("one")
    cache_file = tmp_path / "cache.json"
    cache = DigestCache(cache_file)
    first = digest_entries([ContextEntry("project/a.py", 0o644, source=f)], cache)
    cache.save()
    again = DigestCache(cache_file).digest(f)
    assert again == first[0].sha256
    f.write_text("two!")
    assert DigestCache(cache_file).digest(f) != again
    cache_file.write_text("{not json")
    assert (
        DigestCache(cache_file).digest(f) == digest_entries([ContextEntry("p", 0o644, data=b"two!")], cache)[0].sha256
    )


def test_context_dir_holds_the_entries_and_shows_every_edit(tmp_path: Path) -> None:
    from runner.image import context_mtime_ns, sync_context_dir
    from runner.jsonfile import read_json, write_json

    src = tmp_path / "a.py"
    src.write_text("v = 1\n")
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (1 << 20))
    entries = [
        ContextEntry("project/a.py", 0o644, source=src),
        ContextEntry(".runner/uv", 0o755, source=big),
        ContextEntry("Dockerfile", 0o644, data=b"FROM x\n"),
    ]
    root, blobs = tmp_path / "ctx", tmp_path / "blobs"
    (root / "project").mkdir(parents=True)
    (root / "project" / "stale.py").write_text("old")
    assert sync_context_dir(root, entries, digest_entries(entries, DigestCache(None)), blobs=blobs)
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        ".runner/uv",
        "Dockerfile",
        "project/a.py",
    ]
    a = (root / "project/a.py").stat()
    assert a.st_mode & 0o777 == 0o644 and int(a.st_mtime) == 0  # the image reads mtime 0
    assert a.st_mtime_ns == context_mtime_ns(hashlib.sha256(b"v = 1\n").hexdigest())
    assert (root / ".runner/uv").stat().st_nlink == 2 and (root / ".runner/uv").stat().st_mode & 0o777 == 0o755
    assert (root / "project").stat().st_mtime_ns == 0

    src.write_text("v = 2\n")  # same size: only the mtime can tell BuildKit it changed
    assert sync_context_dir(root, entries, digest_entries(entries, DigestCache(None)), blobs=blobs)
    assert (root / "project/a.py").read_text() == "v = 2\n"
    assert (root / "project/a.py").stat().st_mtime_ns != a.st_mtime_ns

    # a changed file whose size and mtime would both stay: refused, the caller starts a new folder
    manifest = root.with_name("ctx.json")
    doc = read_json(manifest)
    assert isinstance(doc, dict)
    digests = digest_entries(entries, DigestCache(None))
    sha = next(d.sha256 for d in digests if d.arcname == "project/a.py")
    doc["project/a.py"] = ["0" * 64, 0o644, 6, context_mtime_ns(sha)]
    write_json(manifest, doc)
    assert not sync_context_dir(root, entries, digests, blobs=blobs)
