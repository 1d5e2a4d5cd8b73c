"""What a user sees when something goes wrong: the project's error types and the one function (`explain`) that
turns any exception into an exit status and a one-paragraph message. The CLI calls it in one place; the
traceback is shown only with REPRO_DEBUG=1."""

from __future__ import annotations

import errno

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
    """Bad input (an option, a path, a value): exit status 2."""


class RunFailed(RuntimeError):
    """Training raised: the runs concerned are marked failed (traceback in their folder), exit status 1."""


def _bad_input_types() -> tuple[type[BaseException], ...]:
    # StoreError and DataError are UserErrors; DatasetError is a ValueError
    return UserError, ValueError, LookupError, FileNotFoundError


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
    if isinstance(error, _bad_input_types()):
        keyed = isinstance(error, KeyError) and error.args and isinstance(error.args[0], str)
        return BAD_INPUT, _paragraph(error.args[0] if keyed else str(error))  # str(KeyError) adds quotes
    return FAILED, _paragraph(f"internal error ({type(error).__name__}: {error}). This is a bug in repro: rerun "
                              "with REPRO_DEBUG=1 to see the traceback and report it; finished runs are kept.")


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
