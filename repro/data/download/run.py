"""The commands: `repro data download` (fetch, verify, lay out, then say what `repro data check` finds),
`--list` (every entry with size, access kind and state), `--print-urls` (for machines without internet) and
`repro data verify` (checksums and file counts of what is present; read-only)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from repro.data.download import marker
from repro.data.download.catalogue import select
from repro.data.download.checksums import digests
from repro.data.download.entries import KINDS, Entry, Source, mirrors, urls
from repro.data.download.fetch import Fetched, Refused, Unreachable, fetch, part_path
from repro.data.download.hosts import drive_fetch, kaggle_fetch, kaggle_steps
from repro.data.download.unpack import Unsafe, place
from repro.errors import UserError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

STAGING = ".repro-downloads"


class DownloadFailed(UserError):
    """A requested entry could not be fetched: the paragraph names the URL, the manual step and the target."""


@dataclass(frozen=True)
class Row:
    """One line of the summary: what happened to one source file of an entry."""

    entry: str
    file: str
    result: str  # fetched / present / kept / failed / skipped
    transferred: int
    detail: str


def staging(entry: Entry, data_root: Path | None) -> Path:
    """Where an entry's files are fetched to before they are placed (.part files, archives not yet extracted)."""
    base = data_root if entry.weights in (None, "data-root") else entry.folder(data_root)
    if base is None:
        raise UserError(f"{entry.name} goes under the data root: pass --data-root DIR or set REPRO_DATA")
    return Path(base) / STAGING / entry.name


def state(entry: Entry, data_root: Path | None) -> str:
    """present (every source in place, or `repro data check` finds the dataset), partial, or missing."""
    spec_state = entry.spec.check(data_root).state if entry.spec else None
    placed = [entry.target(s, data_root).exists() for s in entry.sources]
    if spec_state == "found" or (placed and all(placed) and spec_state != "corrupt"):
        return "present"
    stage = staging(entry, data_root)
    if any(placed) or spec_state in ("subset", "corrupt") or (stage.is_dir() and any(stage.iterdir())):
        return "partial"
    return "missing"


def download(names: list[str], data_root: Path | None, large: bool, console: Console) -> None:
    """Fetch every entry the `names` name (entries, papers or all) into place, print the summary and what
    `repro data check` now finds; DownloadFailed (exit 2) when any could not be fetched."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    entries = list({e.name: e for name in names for e in select(name)}.values())
    rows: list[Row] = []
    failures: list[str] = []
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        for entry in entries:
            got, failure = _download_entry(entry, data_root, large, progress)
            rows += got
            failures += [failure] if failure else []
    _summary(rows, console)
    checked = [e.spec.check(data_root) for e in entries if e.spec is not None]
    if checked:
        from repro.data.check import render

        console.print("\n[bold]repro data check[/] now finds:")
        render(checked, console)
    if len(failures) == 1:
        raise DownloadFailed(failures[0])
    if failures:
        for failure in failures:
            console.print(failure + "\n", highlight=False, soft_wrap=True)
        raise DownloadFailed(f"{len(failures)} entries could not be fetched; each paragraph above names the URL, the "
                             "manual step and the target folder")


def _download_entry(entry: Entry, root: Path | None, large: bool, progress: Progress) -> tuple[list[Row], str | None]:
    if entry.spec is not None and entry.spec.check(root).state == "found":
        return [Row(entry.name, "", "present", 0, "found by repro data check")], None
    if entry.large and not large and entry.kind != "manual":
        from rich.filesize import decimal

        size = decimal(entry.nbytes or 0)
        return ([Row(entry.name, "", "skipped", 0, f"about {size}: needs --large")],
                f"{entry.name} is about {size}: pass --large to fetch it into {entry.folder(root)}.")
    rows = []
    for source in entry.sources:
        target = entry.target(source, root)
        if target.exists() or target.is_symlink():
            row, failure = _present(entry, source, target, root)
            if failure:
                return rows + [row], failure
            rows.append(row)
            continue
        try:
            fetched = _fetch(entry, source, root, _Bar(progress))
            files = place(fetched.path, source, target)
        except (Unreachable, Unsafe) as e:
            if isinstance(e, Unsafe):
                (staging(entry, root) / source.file).unlink(missing_ok=True)
            return rows + [Row(entry.name, source.file, "failed", 0, str(e))], _paragraph(entry, source, root, e)
        fetched.path.unlink(missing_ok=True)  # an archive, once extracted
        marker.record(entry, source, fetched, files, root)
        rows.append(Row(entry.name, source.file, "fetched", fetched.transferred, fetched.url))
    stage = staging(entry, root)
    if stage.is_dir() and not any(stage.iterdir()):
        stage.rmdir()
    return rows, None


def _fetch(entry: Entry, source: Source, root: Path | None, meter: _Bar) -> Fetched:
    stage = staging(entry, root)
    if mirrors() or source.kind in ("http", "fragile"):
        try:
            return fetch(urls(entry, source), source, stage, meter)
        except Unreachable as e:
            if not source.drive_id or mirrors():
                raise
            try:
                return drive_fetch(source, stage)
            except Refused as r:
                raise Unreachable([*e.failures, f"gdown: {r}"]) from None
    if source.kind == "kaggle":
        try:
            return kaggle_fetch(source, stage)
        except Refused as r:
            raise Unreachable([f"Kaggle {source.kaggle}: {r}"]) from None
    raise Unreachable(["no public download (registration, or too large to fetch unasked)"])


def _present(entry: Entry, source: Source, target: Path, root: Path | None) -> tuple[Row, str | None]:
    """A source whose target exists: never overwritten; a file is checked against its checksum."""
    recorded = marker.read(entry, root).get(source.file)
    if source.unpack == "file" and target.is_file():
        found = digests(target)
        expected = source.pinned
        ok = expected.matches(found) if expected else recorded is None or recorded["sha256"] == found.sha256
        if not ok:
            detail = f"{target} differs from {expected or 'the sha256 recorded when it was fetched'}"
            return (Row(entry.name, source.file, "kept", 0, detail),
                    f"{detail}. It is kept (repro never overwrites a file it finds); move it away and run the "
                    f"command again to fetch {source.file}.")
    return Row(entry.name, source.file, "present", 0,
               "fetched earlier" if recorded else "present (not fetched by repro): kept as is"), None


def _paragraph(entry: Entry, source: Source, root: Path | None, error: Exception) -> str:
    part = part_path(staging(entry, root), source)
    kept = f" The partial download {part} is kept and resumed by the next call." if part.exists() else ""
    how = kaggle_steps(source) if source.kind == "kaggle" else entry.how
    target = entry.target(source, root)
    return (f"Could not fetch {source.file} for {entry.name} ({KINDS[source.kind]}): {error}. By hand: {how}; it "
            f"belongs at {target} (then `repro data verify {entry.name}`). Nothing was written there.{kept}")


class _Bar:
    """A rich progress task for one file: bytes, rate and time left."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = None

    def start(self, label: str, total: int | None, completed: int) -> None:
        if self.task is None:
            self.task = self.progress.add_task(label, total=total, completed=completed)
        else:
            self.progress.reset(self.task, total=total, completed=completed, description=label)

    def advance(self, n: int) -> None:
        self.progress.advance(self.task, n)


def _summary(rows: list[Row], console: Console) -> None:
    from rich.filesize import decimal
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="download")
    for column in ("entry", "file", "result", "transferred", "from / detail"):
        table.add_column(column)
    styles = {"fetched": "green", "present": "green", "kept": "yellow", "skipped": "yellow", "failed": "red"}
    for r in rows:
        table.add_row(r.entry, r.file, f"[{styles[r.result]}]{r.result}[/]", decimal(r.transferred), escape(r.detail))
    console.print(table)


def to_fetch(names: list[str], data_root: Path | None) -> list[tuple[Entry, int | None]]:
    """The entries of `names` not yet present under `data_root`, with their size (None: not published), for a
    dry run to say what a download would fetch and how large it is."""
    entries = {e.name: e for name in names for e in select(name)}.values()
    return [(e, e.nbytes) for e in entries if state(e, data_root) != "present"]


def list_entries(data_root: Path | None, console: Console) -> None:
    """Every entry: papers, access kind, size, pinned or not, state under the data root, and where it goes."""
    from rich.filesize import decimal
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"downloads{' (mirror: ' + ' '.join(mirrors()) + ')' if mirrors() else ''}")
    for column in ("entry", "papers", "access", "size", "checksum", "state"):
        table.add_column(column, no_wrap=column in ("entry", "access", "size"))
    table.add_column("target", overflow="fold")
    for entry in select("all"):
        pinned = sum(s.checksum is not None for s in entry.sources)
        checksum = ("pinned" if pinned == len(entry.sources) and pinned else "unpinned" if not pinned
                    else f"{pinned} of {len(entry.sources)} pinned")
        size = ("~" * any(s.size is None for s in entry.sources) + decimal(entry.nbytes)) if entry.nbytes else "?"
        if data_root is None and entry.weights in (None, "data-root"):
            where, now = f"<data root>/{entry.spec.relpath if entry.spec else 'models'}", "-"
        else:
            where, now = str(entry.folder(data_root)), state(entry, data_root)
        table.add_row(entry.name, ", ".join(entry.papers), entry.kind, size, checksum, now, escape(where))
    console.print(table)
    console.print("access: " + "; ".join(f"{k} = {label}" for k, label in KINDS.items()), highlight=False)


def print_urls(what: str, data_root: Path | None, console: Console) -> None:
    """One line per URL (mirrors in order): URL, checksum (or "unpinned"), target path; Kaggle and manual sources
    say what to do instead."""
    for entry in select(what):
        for source in entry.sources:
            target = entry.target(source, data_root) if data_root or entry.weights in ("hub", "repro-weights") \
                else Path("<data root>") / (entry.spec.relpath if entry.spec else "models") / source.dest
            where = f"{source.checksum or 'unpinned'}\t{target}"
            lines = urls(entry, source) or ([f"kaggle:{source.kaggle}"] if source.kaggle else [f"manual: {entry.how}"])
            for url in lines:
                console.print(f"{url}\t{where}", highlight=False, soft_wrap=True, markup=False)


def verify(what: str, data_root: Path | None, console: Console) -> None:
    """Checksums of the files and file counts of the folders that are present (read-only); UserError on a
    mismatch."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="verify")
    for column in ("entry", "file", "check", "result"):
        table.add_column(column)
    bad = []
    for entry in select(what):
        recorded = marker.read(entry, data_root)
        for source in entry.sources:
            check, ok = _verify_source(entry, source, recorded.get(source.file), data_root)
            table.add_row(entry.name, source.file, escape(check), {True: "[green]ok[/]", False: "[red]MISMATCH[/]",
                                                                   None: "-"}[ok])
            bad += [f"{entry.name} {source.file}: {check}"] * (ok is False)
        if entry.spec is not None:
            status = entry.spec.check(data_root)
            table.add_row(entry.name, "", escape(f"repro data check: {status.state} {status.counts}"),
                          "[green]ok[/]" if status.state == "found" else "-")
    console.print(table)
    if bad:
        raise UserError(f"{len(bad)} file(s) differ from what was published or fetched: {'; '.join(bad)}")


def _verify_source(entry: Entry, source: Source, recorded: dict | None,
                   root: Path | None) -> tuple[str, bool | None]:
    target = entry.target(source, root)
    if not target.exists():
        return f"{target} absent", None
    if source.unpack == "file":
        found = digests(target)
        expected = source.pinned
        if expected:
            return f"{expected}", expected.matches(found)
        if recorded:
            return f"sha256 recorded when fetched {recorded['sha256'][:12]}...", recorded["sha256"] == found.sha256
        return "unpinned and not fetched by repro: nothing to compare", None
    files = sum(1 for p in target.rglob("*") if p.is_file() and not p.is_symlink())
    expected_files = source.files if source.files is not None else (recorded or {}).get("files")
    if expected_files is None:
        return f"{files} files (no count to compare)", None
    return f"{files} files, expected {expected_files}", files == expected_files
