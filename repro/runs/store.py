"""The run store: one folder per run under `<runs_dir>/<paper>/<key>/`, named by the hash of its resolved config;
the files of a folder are the run-folder contract's (`repro.runs.record`)."""

from __future__ import annotations

import fcntl
import io
import json
import os
import secrets
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, NamedTuple

from repro.config import RunConfig
from repro.errors import UserError
from repro.runs import record as contract

DONE, DAMAGED, RUNNING, FAILED, PARTIAL, PENDING = "done", "damaged", "running", "failed", "partial", "pending"


class StoreError(UserError, RuntimeError):
    """A run record that cannot be read or a runs dir that cannot be written."""


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Let `write` fill a buffer in memory, write that to a temp file beside `path`, sync it and rename it over
    `path`, so readers never see half a file. The file gets the user's umask, as any file they create. A failed
    write (a full disk) raises OSError naming `path`, removes the temp file and leaves `path` as it was (torch
    and zip writers turn a failed write into a RuntimeError: hence the buffer)."""
    buffer = io.BytesIO()
    write(buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the mode the umask applies to
    try:
        try:
            _write_all(fd, buffer.getbuffer(), path, sync=True)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_all(fd: int, data: bytes | memoryview, path: Path, sync: bool) -> None:
    """Write all of `data` to `fd` (one call to the OS unless it writes less) and, with `sync`, sync it to the
    disk; an OS error (ENOSPC: a full disk) is raised naming `path`."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
        if sync:
            os.fsync(fd)
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from e


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` to `path` atomically (see `atomic_write`)."""
    atomic_write(path, lambda f: f.write(text.encode()))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def check_folder(path: Path, option: str, write: bool = False) -> None:
    """Raise StoreError naming `option` and the fix when the folder `path` is a file or lies under one, or
    (`write`) cannot be created or written."""
    path = Path(path)
    blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        where = "is a file" if blocker == path else f"lies under the file {blocker}"
        created = " (it is created if missing)" if write else ""
        raise StoreError(f"{option} {path} {where}, not a folder. Pass a folder with {option.split()[0]}{created}.")
    if not write:
        return
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".probe"):
            pass
    except OSError as e:
        raise StoreError(f"cannot write {option} {path} ({e.strerror or e}). Pass a folder you can write to "
                         f"with {option.split()[0]}.") from e


def set_aside(path: Path) -> Path:
    """Rename a damaged run-store file to `<name>.corrupt-<time>` (kept for the user); returns the new path."""
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    path.rename(aside)
    return aside


def read_json(path: Path) -> Any:
    """Read a JSON record; a corrupt one raises StoreError naming the file and the fix."""
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise StoreError(
            f"corrupt run record {path} ({e}). Delete its run folder ({path.parent}) to retrain that run; "
            "every other run is kept."
        ) from e


class Lines(NamedTuple):
    """A JSON-lines file read by whole lines (`read_lines`)."""

    records: list[dict[str, Any]]  # the whole records before the first bad line
    bad: int | None  # the first line (1-based) that is not a whole record; None if none
    torn: bool  # that line is the last one: a write cut short (a kill, a full disk), not damage in the middle


def read_lines(path: Path) -> Lines:
    """The records of a JSON-lines file (none if it is missing). A whole record is a JSON object on a line that
    ends with its newline; the last line is torn when it lacks its newline or is not a JSON object."""
    try:
        *lines, tail = path.read_bytes().split(b"\n")  # tail: what follows the last newline
    except FileNotFoundError:
        return Lines([], None, False)
    items, records = [*lines, tail] if tail else lines, []
    for i, line in enumerate(items):
        try:
            record = json.loads(line)
        except ValueError:  # JSONDecodeError, UnicodeDecodeError
            record = None
        if i == len(lines) or not isinstance(record, dict):  # i == len(lines): the tail, without its newline
            return Lines(records, i + 1, torn=i == len(items) - 1)
        records.append(record)
    return Lines(records, None, False)


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record) + "\n"


@dataclass(frozen=True)
class RunRecord:
    """Handle on one run folder."""

    dir: Path
    config: RunConfig

    @property
    def key(self) -> str:
        return self.config.key

    def path(self, name: str) -> Path:
        return self.dir / name

    def state(self) -> str:
        """done, damaged (done, but its records cannot be used: `damage`), running (claimed by a live process),
        failed, partial (checkpoint), or pending."""
        if self.path(contract.DONE).exists():
            return DAMAGED if self.damage() else DONE
        if self.path(contract.CLAIM).exists() and self._locked_elsewhere():
            return RUNNING
        if self.path(contract.FAILED).exists():
            return FAILED
        if self.path(contract.CHECKPOINT).exists():
            return PARTIAL
        return PENDING

    def _locked_elsewhere(self) -> bool:
        try:
            fd = os.open(self.path(contract.CLAIM), os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing releases a lock we may just have taken
        return False

    def result(self) -> dict[str, Any]:
        """The run's result.json with the contract's keys (`repro.runs.record.RESULT_KEYS`); one written before
        the contract is upgraded on read. A damaged one raises StoreError."""
        result, damage = self._read_result()
        if damage:
            raise StoreError(f"the finished run {self.dir} is damaged: {damage}. Run its artefact command again to "
                             "retrain it (the damaged file is kept beside it); every other run is kept.")
        return result

    def damage(self) -> str | None:
        """Why the records of a finished run cannot be used (None if they can): result.json missing, not JSON, not
        an object or without the contract's keys, or a line of metrics.jsonl that is not a whole record."""
        fault = self._fault()
        return fault[1] if fault else None

    def _fault(self) -> tuple[str, str] | None:
        """The damaged file of a finished run and why (`damage`)."""
        reason = self._read_result()[1]
        if reason:
            return contract.RESULT, reason
        reason = self.metrics_fault(finished=True)
        return (contract.METRICS, reason) if reason else None

    def metrics_fault(self, finished: bool) -> str | None:
        """Why metrics.jsonl cannot be used (None if it can): a line that is not a whole record. A torn last line
        of an unfinished run is no fault: the checkpoint holds the records it covers (`repro.engine`); a finished
        run's lines are synced before it is marked done."""
        lines = read_lines(self.path(contract.METRICS))
        if lines.bad is None or (lines.torn and not finished):
            return None
        return f"{contract.METRICS} line {lines.bad} is not a whole record"

    def _read_result(self) -> tuple[dict[str, Any], str | None]:
        path = self.path(contract.RESULT)
        try:
            result = json.loads(path.read_text())
        except FileNotFoundError:
            return {}, f"{contract.RESULT} is missing"
        except (json.JSONDecodeError, UnicodeDecodeError):
            return {}, f"{contract.RESULT} is not valid JSON"
        if not isinstance(result, dict):
            return {}, f"{contract.RESULT} holds a JSON {type(result).__name__}, not an object"
        result = contract.upgrade_result(result, self.config.epochs)
        missing = contract.missing_keys(result)
        return result, f"{contract.RESULT} lacks {', '.join(missing)}" if missing else None

    def set_aside_damaged(self) -> str:
        """Make a damaged finished run trainable again: its damaged file is set aside (`set_aside`) and its done
        marker removed; returns the warning, also logged."""
        name, reason = self._fault()
        if self.path(name).exists():
            kept = f"{name} moved to {set_aside(self.path(name)).name}, "
        else:
            kept = ""
        self.path(contract.DONE).unlink()
        message = f"damaged finished run {self.dir} ({reason}): {kept}training it again"
        self.log(message)
        return message

    def clear_temp_files(self) -> None:
        """Remove the temp files of atomic writes cut short by a kill (call only while holding the run's claim)."""
        for tmp in self.dir.glob(".*.tmp"):
            tmp.unlink(missing_ok=True)

    def log(self, text: str) -> None:
        """Append a timestamped line to the run's `log.txt`."""
        with open(self.path(contract.LOG), "a") as f:
            f.write(time.strftime("%Y-%m-%d %H:%M:%S ") + text + "\n")

    def metrics(self) -> list[dict[str, Any]]:
        """Per-epoch records, in epoch order: the whole records of metrics.jsonl (`read_lines`; what a bad line
        means is `metrics_fault`'s)."""
        return read_lines(self.path(contract.METRICS)).records

    def append_metrics(self, record: dict[str, Any], sync: bool) -> None:
        """Append one epoch's record to metrics.jsonl as one whole line in one write, synced to the disk with
        `sync`."""
        path = self.path(contract.METRICS)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            _write_all(fd, _line(record).encode(), path, sync)
        finally:
            os.close(fd)

    def write_metrics(self, records: list[dict[str, Any]]) -> None:
        """Replace metrics.jsonl by `records` (atomically)."""
        atomic_write_text(self.path(contract.METRICS), "".join(_line(r) for r in records))

    def failure(self) -> str:
        """Last line of the recorded error of a failed run."""
        lines = self.path(contract.FAILED).read_text().strip().splitlines()
        return lines[-1] if lines else "unknown error"


class Claim:
    """An exclusive advisory lock on a run folder; the OS releases it if the process dies."""

    def __init__(self, record: RunRecord):
        self.record = record
        self.fd: int | None = None

    def acquire(self) -> bool:
        self.record.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.record.path(contract.CLAIM), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class RunStore:
    """All runs under one runs dir."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def check_writable(self) -> None:
        """Raise StoreError with the fix if the runs dir cannot be created or written."""
        check_folder(self.root, "--runs-dir (or REPRO_RUNS)", write=True)

    def record(self, config: RunConfig) -> RunRecord:
        return RunRecord(self.root / config.paper / config.key, config)

    def init(self, record: RunRecord) -> None:
        """Write the config of a run the first time it is planned for training."""
        if not record.path(contract.CONFIG).exists():
            atomic_write_json(record.path(contract.CONFIG), record.config.to_dict())
