"""Safe placement of a fetched file: an archive (tar of any compression, or zip, told by its content) is extracted
member by member into a temporary folder beside the target, each member path checked first (no absolute path, no
`..`, no link, device or fifo: any one refuses the archive, and tarfile's "data" filter checks again), the member
folder the catalogue names is counted against the archive's listing and the known count, and one rename puts it in
place. A target that exists is never touched; a temporary folder left by a killed call is removed by the next one."""

from __future__ import annotations

import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from repro.data.download.entries import Source

_TMP = ".{}.extracting-"
_SKIP = "__MACOSX"  # resource forks a macOS zip adds beside its content


class Unsafe(Exception):
    """The archive cannot be placed: an unsafe member, no such member folder, or a wrong file count."""


def place(staged: Path, source: Source, target: Path) -> int:
    """Put a fetched file at `target` (moved, or extracted for an archive); returns the number of files placed."""
    if target.exists() or target.is_symlink():
        raise FileExistsError(f"{target} exists")  # callers check first: an existing user file is never replaced
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.unpack == "file":
        shutil.move(staged, target)
        return 1
    clean_stale(target)
    tmp = Path(tempfile.mkdtemp(prefix=_TMP.format(target.name), dir=target.parent))
    try:
        content = tmp / "content"
        content.mkdir()
        wanted = _wanted(source.member)
        files = _extract(staged, content, wanted)
        root = _root(files, source.member, staged)
        count = sum(1 for f in files if root in f.parents)
        if not count:
            raise Unsafe(f"{staged.name} holds no files under {root}/")
        if source.files is not None and count != source.files:
            raise Unsafe(f"{staged.name} holds {count} files under {root}/, the official release {source.files}: "
                         "refused (a changed or different source)")
        placed = content / root
        got = sum(1 for p in placed.rglob("*") if p.is_file() and not p.is_symlink())
        if got != count:
            raise Unsafe(f"{got} files extracted from {staged.name} under {root}/, it lists {count}")
        placed.rename(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return count


def clean_stale(target: Path) -> None:
    """Remove temporary folders that a killed extraction into `target` left behind (only ours, by their name)."""
    if target.parent.is_dir():
        for old in target.parent.glob(_TMP.format(target.name) + "*"):
            shutil.rmtree(old, ignore_errors=True)


def _wanted(member: str | None) -> Callable[[PurePosixPath], bool]:
    if member is None:
        return lambda p: bool(p.parts) and p.parts[0] != _SKIP
    root = _normal(member)
    return lambda p: p == root or root in p.parents


def _extract(archive: Path, into: Path, wanted: Callable[[PurePosixPath], bool]) -> list[PurePosixPath]:
    """Extract the wanted members of `archive` into `into`, checking every member first; the files extracted."""
    files = []
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise Unsafe(f"{archive.name}: member {info.filename!r} is a symbolic link: refused")
                path = _checked(info.filename, archive)
                if wanted(path):
                    z.extract(info, into)
                    files += [path] * (not info.is_dir())
        return files
    try:
        with tarfile.open(archive) as t:
            for info in t:
                path = _checked(info.name, archive)
                if not (info.isfile() or info.isdir()):
                    raise Unsafe(f"{archive.name}: member {info.name!r} is a link or special file: refused")
                if wanted(path):
                    t.extract(info, into, filter="data")
                    files += [path] * info.isfile()
    except (tarfile.TarError, EOFError, OSError) as e:
        raise Unsafe(f"{archive.name} is neither a zip nor a readable tar archive ({e})") from None
    return files


def _normal(name: str) -> PurePosixPath:
    return PurePosixPath(*[p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("", ".")])


def _checked(name: str, archive: Path) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise Unsafe(f"{archive.name}: member {name!r} would be written outside its folder: refused")
    return _normal(name)


def _root(files: list[PurePosixPath], member: str | None, archive: Path) -> PurePosixPath:
    """The member folder to place: the catalogue's ("" = the whole archive), or (None) the single top-level
    folder of the archive."""
    if member is not None:
        return _normal(member)
    tops = {f.parts[0] for f in files}
    if len(tops) != 1 or any(len(f.parts) == 1 for f in files):
        raise Unsafe(f"{archive.name} does not hold a single top-level folder (it holds {', '.join(sorted(tops))})")
    return PurePosixPath(tops.pop())
