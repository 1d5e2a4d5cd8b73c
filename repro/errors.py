"""What a user sees when something goes wrong: the project's error types and the one function (`explain`) that
turns any exception into an exit status and a one-paragraph message. The CLI calls it in one place.

Only bad input is exit status 2: a `UserError` (raised where the input is read), an OS error on a path, a missing
optional package. Anything else is a bug: exit status 1, its traceback written to a log file under
$XDG_CACHE_HOME/repro/logs (default ~/.cache/repro/logs) that the message names; REPRO_DEBUG=1 shows it instead."""

from __future__ import annotations

import errno
import os
import traceback
from datetime import datetime
from pathlib import Path

BAD_INPUT, FAILED = 2, 1  # exit statuses

_OS_FIX = {
    errno.ENOTDIR: "a part of that path is a file, not a folder: pass a folder (it is created if missing)",
    errno.EEXIST: "a file is in the way of a folder repro must create: move it or pass another path",
    errno.EISDIR: "that path is a folder where repro expects a file",
    errno.EACCES: "repro may not use that path: pass one you can write to",
    errno.EPERM: "repro may not use that path: pass one you can write to",
    errno.EROFS: "that file system is read-only: pass a path on a writable one",
    errno.ENOSPC: "the disk is full: free some space or pass --runs-dir / --out on another disk; finished runs "
                  "are kept and the command resumes where it stopped",
    errno.ENOENT: "it does not exist: check the path",
}


# Optional packages (pyproject's extras): the module, the extra that installs it, and what needs it.
EXTRAS = {
    "submitit": ("slurm", "--launcher slurm (and REPRO_SUBMITIT=local)"),
    "captum": ("cfaug", "cfaug's DeepLiftShap saliency (Tables 5, 6 and the AUPR figures)"),
    "nibabel": ("msd", "actdiff's MSD NIfTI volumes (Table 2's Liver, Cardiac and Pancreas columns, Figures 4, 8)"),
}


class UserError(Exception):
    """Bad input (an option, a path, a value, the data): exit status 2."""


class DatasetError(UserError, ValueError):
    """A dataset is missing, incomplete, corrupt or in the wrong layout; the message names the path and the fix.
    `path` and `problem` name the one bad file where a file is at fault (`repro.data.probes.bad_file`)."""

    def __init__(self, message: str, path: Path | None = None, problem: str | None = None):
        super().__init__(message)
        self.path, self.problem = path, problem


class RunFailed(RuntimeError):
    """Training raised: the runs concerned are marked failed (traceback in their folder), exit status 1."""


def require(module: str) -> None:
    """Fail before any work when an optional package (a key of EXTRAS) is not installed; `explain` names the
    extra that installs it."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ModuleNotFoundError(f"No module named {module!r}", name=module)


def explain(error: BaseException) -> tuple[int, str]:
    """The exit status and one-paragraph message for `error`: bad input (2) names the problem and the fix; a
    failed run (1) names the run; a full disk (1) says so, with the fix; anything else (1) is a bug, reported as
    such."""
    return _known(error) or _bug(error, None)


def explain_and_log(error: BaseException) -> tuple[int, str]:
    """`explain`, and for a bug, its traceback written to a log file (`log_bug`) that the message names."""
    return _known(error) or _bug(error, log_bug(error))


def is_bug(error: BaseException) -> bool:
    """Whether `error` is none of the expected failures (bad input, a failed run, a full disk)."""
    return _known(error) is None


def _known(error: BaseException) -> tuple[int, str] | None:
    if isinstance(error, OSError) and error.strerror:  # raised by the OS, mostly on a user's path
        full = error.errno == errno.ENOSPC  # no bad input: the same command works once there is space
        return FAILED if full else BAD_INPUT, _paragraph(cause(error) + ".")
    if isinstance(error, ModuleNotFoundError) and (error.name or "").split(".")[0] in EXTRAS:
        module = (error.name or "").split(".")[0]
        extra, needed_by = EXTRAS[module]
        return BAD_INPUT, _paragraph(
            f"the optional package {module} is not installed, and {needed_by} needs it. Install the extra with "
            f"`pip install 'repro[{extra}]'` (in a checkout: `pip install -e '.[{extra}]'`), or `pip install "
            f"{module}`, then run the command again; finished runs are kept.")
    if isinstance(error, RunFailed):
        return FAILED, _paragraph(str(error))
    if isinstance(error, UserError):
        return BAD_INPUT, _paragraph(str(error))
    return None


def _bug(error: BaseException, log: Path | None) -> tuple[int, str]:
    where = f"its traceback is in {log} (REPRO_DEBUG=1 shows it here)" if log else \
        "rerun with REPRO_DEBUG=1 to see the traceback"
    return FAILED, _paragraph(f"internal error ({type(error).__name__}: {error}). This is a bug in repro: {where}; "
                              "please report it. Finished runs are kept.")


def log_folder() -> Path:
    """Where `log_bug` writes: $XDG_CACHE_HOME/repro/logs, default ~/.cache/repro/logs."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "repro" / "logs"


def log_bug(error: BaseException) -> Path | None:
    """Write `error`'s traceback to a new file under `log_folder()`; its path, or None if it cannot be written."""
    path = log_folder() / f"error-{datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(traceback.format_exception(error)))
    except OSError:
        return None
    return path


def cause(error: BaseException) -> str:
    """What went wrong, in one line: an OS error's reason, path and fix (e.g. a full disk), else the exception's
    type and text."""
    if not (isinstance(error, OSError) and error.strerror):
        return f"{type(error).__name__}: {error}"
    where = f": {error.filename}" if error.filename else ""
    fix = _OS_FIX.get(error.errno or 0, "check the path and its permissions")
    return f"{error.strerror}{where}. {fix[0].upper()}{fix[1:]}"


def _paragraph(text: str) -> str:
    return " ".join(text.split())
