"""The hosts plain HTTP cannot always serve, through their optional packages (the `download` extra), imported only
when needed: Kaggle (`kaggle`, with the user's API token) and Google Drive (`gdown`, tried when Drive answers the
plain request with its HTML warning page). Neither publishes checksums: the sha256 of what arrives is recorded."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from repro.data.download.checksums import digests
from repro.data.download.entries import Source
from repro.data.download.fetch import Fetched, Refused, verify


def kaggle_ready() -> str | None:
    """Why the Kaggle API cannot be used here, or None when it can."""
    if importlib.util.find_spec("kaggle") is None:
        return "the kaggle package is not installed (pip install 'repro[download]')"
    config = Path(os.environ.get("KAGGLE_CONFIG_DIR") or Path.home() / ".kaggle") / "kaggle.json"
    if not (os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY")) and not config.is_file():
        return f"no Kaggle API token ({config}, or KAGGLE_USERNAME and KAGGLE_KEY)"
    return None


def kaggle_steps(source: Source) -> str:
    """The manual Kaggle steps for `source`: token, rules, the command."""
    what, _, rest = (source.kaggle or "").partition("/")
    if what == "competitions":
        competition, _, file = rest.partition("/")
        return (f"accept the rules at https://www.kaggle.com/c/{competition}/rules, put an API token (kaggle.com > "
                f"Settings > Create New Token) at ~/.kaggle/kaggle.json, then `kaggle competitions download -c "
                f"{competition} -f {file}` and unzip it")
    return (f"put an API token (kaggle.com > Settings > Create New Token) at ~/.kaggle/kaggle.json, then `kaggle "
            f"datasets download -d {rest}` and unzip it")


def kaggle_fetch(source: Source, staging: Path) -> Fetched:
    """Download `source` with the Kaggle API into `staging/<file>` (no resume: the API has none)."""
    why = kaggle_ready()
    if why:
        raise Refused(why)
    from kaggle.api.kaggle_api_extended import KaggleApi

    api = KaggleApi()
    api.authenticate()
    staging.mkdir(parents=True, exist_ok=True)
    what, _, rest = (source.kaggle or "").partition("/")
    try:
        if what == "competitions":
            competition, _, file = rest.partition("/")
            api.competition_download_file(competition, file, path=str(staging), quiet=False)
            got = staging / file
        else:
            api.dataset_download_files(rest, path=str(staging), unzip=False, quiet=False)
            got = staging / f"{rest.rsplit('/', 1)[1]}.zip"
    except Exception as e:  # the API raises its own ApiException, HTTP errors and OSErrors
        raise Refused(f"the Kaggle API failed ({type(e).__name__}: {e})") from None
    if not got.is_file():
        raise Refused(f"the Kaggle API did not write {got.name}")
    final = got.rename(staging / source.file)
    return Fetched(final, f"kaggle:{source.kaggle}", digests(final), final.stat().st_size, final.stat().st_size)


def drive_fetch(source: Source, staging: Path) -> Fetched:
    """Download a Google-Drive file with gdown (which follows Drive's confirmation page) into `staging/<file>`."""
    if importlib.util.find_spec("gdown") is None:
        raise Refused("gdown is not installed (pip install 'repro[download]'), so Drive's confirmation page "
                      "cannot be followed")
    import gdown

    staging.mkdir(parents=True, exist_ok=True)
    final = staging / source.file
    try:
        out = gdown.download(id=source.drive_id, output=str(final), quiet=False, resume=True)
    except Exception as e:  # gdown raises FileURLRetrievalError, requests' errors, OSErrors
        raise Refused(f"gdown failed ({type(e).__name__}: {e})") from None
    if not out or not final.is_file():
        raise Refused("gdown did not write the file (Drive quota exceeded or access denied?)")
    size = final.stat().st_size
    return Fetched(final, f"gdown:{source.drive_id}", verify(final, source), size, size)
