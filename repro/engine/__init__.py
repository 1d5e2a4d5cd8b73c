"""The engine: every paper's training step, batch loop, recipe, evaluation, checkpoints and packing.

`step` (THE training step and batch loop), `recipe` (optimiser, lr schedule), `evaluate` (logits and metrics),
`loop` (`fit`: resume, selection, checkpoints, records), `checkpoint`, `pack` (`PackJob`: actdiff, TAP),
`train` (runs from the store), `weights` (a done run's model). A paper supplies its objective, its feed, its
recipe and, where it has its own, its `Job` (`repro.papers.Paper.job`)."""

from repro.engine.evaluate import (batch_logits, evaluate, evaluate_members, metric_options, predict,
                                   predict_members, save_predictions, stack_members)
from repro.engine.loop import Best, Events, Job, MixedStarts, NonFiniteLoss, fit
from repro.engine.pack import PackJob
from repro.engine.recipe import Schedule, build_optimizer, make_optimizer
from repro.engine.step import BatchMeans, MemberMeans, Step, resident_batches, run_epoch
from repro.engine.train import train_pack, train_run
from repro.engine.weights import load_weights

__all__ = ["BatchMeans", "Best", "Events", "Job", "MemberMeans", "MixedStarts", "NonFiniteLoss", "PackJob",
           "Schedule", "Step", "batch_logits", "build_optimizer", "evaluate", "evaluate_members", "fit",
           "load_weights", "make_optimizer", "metric_options", "predict", "predict_members", "resident_batches",
           "run_epoch", "save_predictions", "stack_members", "train_pack", "train_run"]
