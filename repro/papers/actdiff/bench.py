"""actdiff in `repro bench` (`repro.bench`): Table 1's training step in the packs the launcher forms."""

from __future__ import annotations

from pathlib import Path

from repro.bench import Case, train_steps
from repro.papers import get_paper
from repro.papers.actdiff.plans import SYNTHETIC


def bench_cases(seeds: int) -> list[Case]:
    """Actdiff Table 1 (paper settings, `seeds` seeds) in the packs `repro.runs.launch.pack_groups` forms."""
    from repro.runs.launch import AUTO_PACK_CUDA, pack_groups

    a = SYNTHETIC
    paper = get_paper("actdiff")
    plan = paper.artefacts["table1"].plan(paper.context("paper", seeds, "code", {}, Path("."), None, Path(".")))
    out = []
    for pack in pack_groups(plan, AUTO_PACK_CUDA, lambda run: run.config):
        c = pack[0].config
        rows = ", ".join(dict.fromkeys(run.label.rsplit(" s", 1)[0] for run in pack))  # "CNN Classify s3"
        out.append(Case("actdiff table1", rows, c.model, tuple(run.config.method_args["objective"] for run in pack),
                        c.batch_size, (1, 28, 28), train_steps(a["n_train"], c.batch_size, c.epochs), c.lr, c.optimizer,
                        c.model_args))
    return out
