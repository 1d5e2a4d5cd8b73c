"""The cross study's MaskTune and RandMask cells on resident-tensor benchmarks (decoy MNIST, synth2, PNEU, KNEE;
masktune spec §4-5). Stage 1 (ERM) is the benchmark's plain run itself, under its own key, trained first if it is
not done (`ensure_done`); it keeps its final checkpoint as `last.pt` (`repro.data.registry.KEEP_LAST`). The
finetune loads last_erm's weights and optimiser state and trains exactly one epoch at the lr in force (these
recipes have no scheduler, so none steps) through the engine's step:

- MaskTune: on the training images times the keep masks of best_erm's XGradCAM maps
  (`repro.papers.masktune.masks.saliency_keep`), computed once in eval mode in batches, in stored-pixel space (0 is
  black: MaskTune masks the uint8 originals, §4.4);
- RandMask: on the unmasked training images, one random square cut out of each per batch (`randmask.cutout`).

The finetuned model is the result (selection "final": its `best` is its `final`), evaluated on the benchmark's
splits as the plain run is (the train split as evaluated stays unmasked: the correlated split of synth2).
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from repro.config import RunConfig
from repro.data.registry import TrainData, build_dataset
from repro.engine import Best, PackJob, load_weights
from repro.errors import UserError
from repro.methods import register_method
from repro.papers.masktune.masks import masked_fraction_stats, saliency_keep
from repro.papers.masktune.randmask import cutout
from repro.runs import record as contract
from repro.runs.launch import ensure_done
from repro.runs.prepared import runs_dir_of
from repro.runs.store import RunRecord, RunStore

Stage = Callable[[RunRecord], Any]
Augment = Callable[[Tensor, Tensor, list[torch.Generator]], tuple[Tensor, Tensor]]


def keep_of(model: nn.Module, data: TrainData, batch_size: int, args: dict[str, Any]) -> Tensor:
    """(N, H, W) uint8 keep masks of `data`'s training images: `model`'s XGradCAM (or ScoreCAM) maps of the model
    inputs, in batches, thresholded at mu + k sigma (`args`: cam, threshold_k, threshold_pixels)."""
    return torch.cat([saliency_keep(model, data.batch(x), args) for x in data.x.split(batch_size)])


def with_cutout(augment: Augment | None) -> Augment:
    """The training augmentation `augment` (None: none), then one random square cut out of each image, drawn from
    the (one) member's generator."""
    def cut(x: Tensor, mask: Tensor, gens: list[torch.Generator]) -> tuple[Tensor, Tensor]:
        if augment is not None:
            x, mask = augment(x, mask, gens)
        return cutout(x, gens[0]), mask

    return cut


@register_method("cross.finetune")
class FinetuneJob(PackJob):
    """One MaskTune or RandMask cell (`method_args["finetune"]`): the plain run `method_args["erm"]` continued for
    one epoch on masked (MaskTune) or cut-out (RandMask) training images. Not resumed mid-way: a restart begins
    again from last_erm."""

    resumable = False

    def __init__(self, record: RunRecord, device: torch.device, stage: Stage):
        args = record.config.method_args
        self.erm = ensure_done(RunStore(runs_dir_of(record)).record(RunConfig.from_dict(args["erm"])), stage)
        last = self.erm.path(contract.LAST)
        if not last.exists():
            raise UserError(f"the plain run {self.erm.dir} has no {contract.LAST} (it was trained before its runs "
                            f"kept one); remove that run folder so that it is trained again, then rerun")
        super().__init__([record], device, build_dataset)
        self.load(0, torch.load(last, map_location=device, weights_only=False))
        self.lr = self.members[0].opt.param_groups[0]["lr"]
        data = self.members[0].data
        self.masking: dict[str, Any] = {}
        if args["finetune"] == "masktune":
            keep = keep_of(load_weights(self.erm, "best", device), data, self.cfg.batch_size, args)
            data.x = (data.x * keep[:, None]).to(data.x.dtype)
            self.masking = masked_fraction_stats((1 - keep.float().mean(dim=(1, 2))).cpu().numpy())
        else:
            data.augment = with_cutout(data.augment)

    def finish(self, member: int, best: Best, final: dict[str, dict[str, float]]) -> dict[str, Any]:
        return {**super().finish(member, best, final), "stage": self.cfg.method_args["finetune"],
                "erm_run": self.erm.key, "finetune_lr": self.lr, "masking": self.masking}

    def provenance(self, member: int) -> dict[str, Any]:
        return {**super().provenance(member), "erm_run": self.erm.key}
