"""The run-folder contract: the files of `<runs_dir>/<paper>/<key>/`, the keys of `result.json` and the resume
point. The one training loop (`repro.engine.fit`) writes exactly this; the store, estimates, `repro status` /
`list`, the reports and the aggregators read only this.

Folders written before the contract (by the earlier per-paper training loops) are read through `upgrade_result`
and `weights_file`, so that their done runs are reused without retraining.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CONFIG = "config.json"  # the resolved RunConfig; its hash is the folder name
METRICS = "metrics.jsonl"  # one line per finished epoch: key, epoch, the loss parts, `<split>_<metric>`, seconds
RESULT = "result.json"  # RESULT_KEYS and the paper's extra keys
DONE = "done"  # written last: the run is finished
FAILED = "failed"  # the traceback of a failed attempt
LOG = "log.txt"
PROVENANCE = "provenance.json"
CLAIM = "claim.lock"  # advisory lock held while a process trains the run
CHECKPOINT = "checkpoint.pt"  # the resume point: epoch, the job's state dicts, RNG states, the selection and the
# metrics records so far
CHECKPOINT_INFO = "checkpoint.json"  # {"epoch": ...} of the checkpoint, read without torch
LAST = "last.pt"  # the checkpoint kept after the run, for runs a later stage continues from
BEST = "best.pt"  # weights at the selected epoch
FINAL = "final.pt"  # weights at the last epoch
PREDICTIONS = "predictions.pt"  # logits and labels of the evaluation splits

# result.json: the run key, epochs run, the selection rule, the selected epoch (0-based), the per-split metrics
# at the selected and the final epoch ({split: {metric: value}}), wall seconds and device.
RESULT_KEYS = ("key", "epochs", "selection", "best_epoch", "best", "final", "seconds", "device")
LEGACY_WEIGHTS = {"final": "finetuned.pt"}  # the final weights of a finetuning stage, before the contract


def missing_keys(result: Any) -> list[str]:
    """The contract keys a result lacks (all of them when it is not a JSON object)."""
    if not isinstance(result, dict):
        return list(RESULT_KEYS)
    return [k for k in RESULT_KEYS if k not in result]


def upgrade_result(result: dict[str, Any], epochs: int) -> dict[str, Any]:
    """A result written before the contract, with the keys it lacks filled from what it has: selected-epoch
    metrics only (`final` left empty), no `final`, or a finetuning stage's rounds (`final` only, which is also
    its selection); `epochs` is the run config's."""
    if not missing_keys(result):
        return result
    out = dict(result)
    if "rounds" in out:  # a finetuning stage: its rounds are its epochs, the last one is selected
        out.setdefault("epochs", len(out["rounds"]))
        out.setdefault("best_epoch", len(out["rounds"]) - 1)
        out.setdefault("best", out.get("final", {}))
        out.setdefault("selection", "final")
    out.setdefault("epochs", epochs)
    out.setdefault("selection", f"val/{out.get('metric', 'accuracy')}")
    out.setdefault("final", {})
    return out


def weights_file(folder: Path, which: str) -> Path:
    """The weights file `which` ("best" or "final") of a run folder, under its pre-contract name if only that
    one exists."""
    path = folder / f"{which}.pt"
    legacy = LEGACY_WEIGHTS.get(which)
    if not path.exists() and legacy and (folder / legacy).exists():
        return folder / legacy
    return path
