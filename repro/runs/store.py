"""The run store: one folder per run under `<runs_dir>/<paper>/<key>/`, named by the hash of its resolved config;
the files of a folder are the run-folder contract's (`repro.runs.record`)."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable

from repro.config import RunConfig
from repro.errors import UserError
from repro.runs import record as contract

DONE, DAMAGED, RUNNING, FAILED, PARTIAL, PENDING = "done", "damaged", "running", "failed", "partial", "pending"


class StoreError(UserError, RuntimeError):
    """A run record that cannot be read or a runs dir that cannot be written."""


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Let `write` fill a temp file beside `path`, then rename it over `path`, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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
        """done, damaged (done, but its result cannot be used: `damage`), running (claimed by a live process),
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
        """Why the result of a finished run cannot be used (None if it can): result.json missing, not JSON, not
        an object or without the contract's keys."""
        return self._read_result()[1]

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
        """Make a damaged finished run trainable again: its result is set aside (`set_aside`) and its done
        marker removed; returns the warning, also logged."""
        reason = self.damage()
        if self.path(contract.RESULT).exists():
            aside = set_aside(self.path(contract.RESULT)).name
            kept = f"{contract.RESULT} moved to {aside}, "
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
        """Per-epoch records, in epoch order."""
        path = self.path(contract.METRICS)
        if not path.exists():
            return []
        out = []
        for i, line in enumerate(path.read_text().splitlines()):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise StoreError(f"corrupt line {i + 1} of {path}; delete {self.dir} to retrain that run") from e
        return out

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
