"""Taghanaki et al., "MaskTune: Mitigating Spurious Correlations by Forcing to Explore" (NeurIPS 2022;
specs/masktune.md, papers/masktune.txt).

Every reproduced cell comes from three kinds of runs per dataset and seed: `erm` (best_erm and last_erm),
`masktune` (XGradCAM masks from best_erm, one finetune epoch from last_erm) and, for Figure 2, `randmask`.
The runs are trained by `repro.papers.masktune.train`; the tables and figures are built in
`repro.papers.masktune.report`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repro.config import Bounds, Profiles, RunConfig, Switch
from repro.papers import Context, NotPrepared, PlannedRun

SEMANTICS = "masktune-2"  # 2: biased-MNIST test sets in MNIST order with groups, one shared test subset
EVERY_25 = list(range(25, 300, 25))  # the code's default milestones [25, 50, ..., 275]

SWITCHES = (
    Switch("D-1", "lr_schedule", "code_constant", "paper", "code_constant",
           "ERM lr schedule: stepped per epoch (paper) or never stepped, constant lr (the released code)"),
    Switch("D-4", "threshold_pixels", "positive", "all", "positive",
           "mu and sigma of the mask threshold over the strictly positive heat-map pixels (code) or all pixels"),
    Switch("D-5", "mask_geometry", "code", "aligned", "code",
           "CelebA/Waterbirds masks stretched over the full image (code) or mapped back into the centre crop"),
    Switch("D-6", "masked_format", "code", "lossless_png", "code",
           "masked images saved with the original extension, JPEG q75 (code), or as lossless PNG"),
    Switch("D-7", "square_colour", "red", "blue", "red", "biased-MNIST square: RGB (255,0,0) (code) or (0,0,255) (paper text)"),
    Switch("D-8", "conflict_sampling", "code", "random", "code",
           "biased-MNIST bias-conflicting images: the first/last in digit order (code) or random"),
    Switch("D-9", "mnist_milestones", "code", "paper", "paper",
           "MNIST milestones [25, 50, 75] (finetune lr 1.25e-3) or the code's list [25..275] (6.25e-4)"),
    Switch("D-10", "waterbirds_pretrained", False, True, True, "Waterbirds ResNet-50 from ImageNet weights"),
    Switch("D-11", "in9l_pretrained", False, True, True, "IN-9L ResNet-50 from ImageNet weights"),
    Switch("D-11s", "in9l_recipe", "bash", "paper", "bash",
           "IN-9L batch and lr schedule: 128, constant lr 1e-4 (bash) or 1024, lr x0.1 at epochs 30, 60, 90 from "
           "the initial lr in9l_lr, which the paper does not state (paper)"),
    Switch("D-11l", "in9l_lr", 0.0, 0.0, 0.0,
           "IN-9L initial lr of the paper recipe (D-11s), which the paper does not state; 0 = unset", Bounds(0.0)),
    Switch("D-12", "svhn_batch", 128, 1024, 128, "SVHN batch size: 128 (bash) or 1024 (paper)", Bounds(1)),
    Switch("D-13", "selective_score", "code", "product_max", "code",
           "selective score: max softmax(P_init * P_final) (code) or max(P_init * P_final) (paper)"),
    Switch("D-13a", "selective_argmax", "code", "product", "product",
           "selective prediction: argmax of P_init * P_final (product) or of its softmax (code), which ties "
           "to class 0 in fp32 when the products are all tiny"),
    Switch("D-19", "std_ddof", 0, 1, 1, "std over seeds: sample (ddof 1, repro convention) or numpy's ddof 0",
           (0, 1)),
    Switch("D-26", "cam", "xgradcam", "scorecam", "xgradcam", "saliency for the masks: XGradCAM (used) or ScoreCAM"),
)

# §5.2 "repro" rows: optimiser, lr, batch, epochs, weight decay, MultiStepLR milestones x gamma.
SGD = {"name": "sgd", "momentum": 0.9}
RECIPES: dict[str, dict[str, Any]] = {
    "biased_mnist": {"model": "smallcnn", "classes": 2, "optimizer": SGD, "lr": 0.01, "batch_size": 128,
                     "epochs": 100, "weight_decay": 1e-4, "milestones": [25, 50, 75], "gamma": 0.5},
    "celeba": {"model": "resnet50", "classes": 2, "optimizer": SGD, "lr": 1e-4, "batch_size": 512, "epochs": 20,
               "weight_decay": 1e-4, "milestones": [], "gamma": 1.0},
    "waterbirds": {"model": "resnet50", "classes": 2, "optimizer": SGD, "lr": 1e-4, "batch_size": 128,
                   "epochs": 100, "weight_decay": 1e-4, "milestones": [], "gamma": 1.0},
    "in9l": {"model": "resnet50", "classes": 9, "optimizer": SGD, "lr": 1e-4, "batch_size": 128, "epochs": 100,
             "weight_decay": 1e-4, "milestones": [], "gamma": 1.0},
    "cifar10": {"model": "resnet32", "classes": 10, "optimizer": SGD, "lr": 0.1, "batch_size": 128, "epochs": 300,
                "weight_decay": 1e-4, "milestones": EVERY_25, "gamma": 0.5},
    "svhn": {"model": "resnet32", "classes": 10, "optimizer": SGD, "lr": 0.1, "batch_size": 128, "epochs": 300,
             "weight_decay": 5e-4, "milestones": EVERY_25, "gamma": 0.5},
    "cats_dogs": {"model": "resnet32", "classes": 2, "optimizer": {"name": "adam"}, "lr": 1e-3, "batch_size": 128,
                  "epochs": 200, "weight_decay": 1e-4, "milestones": [50], "gamma": 0.1},
}
IN9L_PAPER = {"batch_size": 1024, "milestones": [30, 60, 90], "gamma": 0.1}  # §5.2 paper row (D-11s)
FILE_WORKERS = 8  # §5.2: data-loader workers (file-backed datasets)
SEEDS = 3  # D-19: seeds 0, 1, 2
COVERAGES = [90, 95, 100]  # §1.4 / §6.3 (the code also runs 80 and 85)

# Reduced profiles: fewer epochs (milestones scaled with them), seeds, images and loader workers; labelled in
# every output.
# Epochs default to each dataset's recipe; `limits` (images per split) is None at paper settings: every image.
PROFILES = Profiles(
    {"seeds": SEEDS, "workers": FILE_WORKERS},
    quick={"seeds": 1, "epochs": 8, "workers": 2, "limits": {"test": 2000, "train": 4000, "val": 1000}},
    smoke={"seeds": 1, "epochs": 2, "workers": 0, "limits": {"train": 64, "val": 32, "test": 64}},
)


def _milestones(ctx: Context, dataset: str, recipe: dict[str, Any], epochs: int) -> list[int]:
    ms = recipe["milestones"]
    if dataset == "biased_mnist" and ctx.switches["mnist_milestones"] == "code":
        ms = EVERY_25
    if epochs != recipe["epochs"]:  # reduced profile: the same fractions of training
        ms = sorted({max(1, round(m * epochs / recipe["epochs"])) for m in ms if m < recipe["epochs"]})
    return ms


def _data(ctx: Context, dataset: str) -> dict[str, Any]:
    from repro.papers.masktune.datasets import prepared_folder, read_source

    meta = read_source(prepared_folder(ctx.runs_dir, dataset))
    data: dict[str, Any] = {"name": dataset, "prepared": f"masktune/{dataset}", "fingerprint": meta["fingerprint"]}
    if dataset == "biased_mnist":
        colour = (255, 0, 0) if ctx.switches["square_colour"] == "red" else (0, 0, 255)
        data["options"] = {"colour": colour, "sampling": ctx.switches["conflict_sampling"]}
    limits = PROFILES.get(ctx.profile, "limits")
    if limits:
        data["limits"] = limits
    return data


def _init(ctx: Context, dataset: str) -> str:
    pretrained = {"waterbirds": ctx.switches["waterbirds_pretrained"], "in9l": ctx.switches["in9l_pretrained"]}
    return ctx.init if pretrained.get(dataset, True) else "random"


def recipe(ctx: Context, dataset: str) -> dict[str, Any]:
    """The dataset's §5.2 recipe; IN-9L's under the D-11s switch (the paper's needs its unstated lr)."""
    r = RECIPES[dataset]
    if dataset != "in9l" or ctx.switches["in9l_recipe"] == "bash":
        return r
    lr = ctx.switches["in9l_lr"]
    if not lr > 0:
        raise ValueError("the paper's IN-9L recipe (in9l_recipe=paper, also set by --fidelity paper) needs its "
                         "initial learning rate, which the paper does not state: pass --switch in9l_lr=VALUE "
                         "(e.g. 0.1 for batch 1024), or --switch in9l_recipe=bash for the released bash file's "
                         "lr 1e-4, batch 128 and constant lr.")
    return {**r, **IN9L_PAPER, "lr": lr}


def run_config(ctx: Context, dataset: str, method: str, seed: int, selective: bool = False) -> RunConfig:
    """One run of `method` (erm, masktune, randmask) on `dataset` at the spec's settings for the profile."""
    r = recipe(ctx, dataset)
    epochs = PROFILES.get(ctx.profile, "epochs", r["epochs"])
    batch = ctx.switches["svhn_batch"] if dataset == "svhn" else r["batch_size"]
    model_args: dict[str, Any] = {"num_classes": r["classes"]}
    if r["model"] == "resnet50":
        model_args["init"] = _init(ctx, dataset)
    file_backed = dataset in ("celeba", "waterbirds", "in9l")
    args: dict[str, Any] = {"trainer": "masktune", "milestones": _milestones(ctx, dataset, r, epochs),
                            "gamma": r["gamma"], "lr_schedule": ctx.switches["lr_schedule"],
                            "workers": PROFILES.get(ctx.profile, "workers") if file_backed else 0}
    if method == "masktune":
        args |= {"cam": ctx.switches["cam"], "threshold_k": 2.0, "threshold_pixels": ctx.switches["threshold_pixels"],
                 "mask_geometry": ctx.switches["mask_geometry"], "masked_format": ctx.switches["masked_format"],
                 "rounds": 1}
    if selective and method == "masktune":
        args |= {"selective": COVERAGES, "selective_score": ctx.switches["selective_score"],
                 "selective_argmax": ctx.switches["selective_argmax"]}
    return RunConfig(paper="masktune", dataset=dataset, model=r["model"], method=method, seed=seed, epochs=epochs,
                     batch_size=batch, lr=r["lr"], data=_data(ctx, dataset), model_args=model_args, method_args=args,
                     optimizer={**r["optimizer"], "weight_decay": r["weight_decay"]}, metrics=("accuracy",),
                     selection="valid/accuracy", semantics=SEMANTICS)


def seeds(ctx: Context) -> range:
    return range(ctx.seeds or PROFILES.get(ctx.profile, "seeds"))


def prepared(ctx: Context, datasets: tuple[str, ...]) -> tuple[str, ...]:
    """The datasets of an artefact whose sources are recorded; none is an error naming them all."""
    from repro.papers.masktune.datasets import SOURCES, prepared_folder

    found = tuple(d for d in datasets if (prepared_folder(ctx.runs_dir, d) / "source.json").exists())
    present = [d for d in datasets if d not in found and ctx.data_root is not None
               and all((Path(ctx.data_root) / f).is_dir() for f in SOURCES[d].folders)]
    if ctx.dry_run and present:
        raise NotPrepared(f"the sources of {', '.join(present)} are not recorded yet")
    if not found:
        raise FileNotFoundError(f"none of {', '.join(datasets)} is prepared: pass --data-root DIR where DIR holds "
                                "them (`repro data check` lists the expected layouts and where to obtain them)")
    return found


def plan(ctx: Context, datasets: tuple[str, ...], methods: tuple[str, ...], selective: bool = False) -> list[PlannedRun]:
    """ERM first (the finetune runs start from it), then the finetune runs, for every prepared dataset and
    seed (Table 4 and Figure 3 use the datasets that are present)."""
    runs = []
    for method in methods:
        for dataset in prepared(ctx, datasets):
            for seed in seeds(ctx):
                cfg = run_config(ctx, dataset, method, seed, selective)
                runs.append(PlannedRun(f"{dataset} {method} s{seed}",
                                       {"dataset": dataset, "method": method, "seed": seed}, cfg))
    return runs


def preparer(*names: str, skip_missing: bool = False):
    """An artefact's `prepare`: record the sources of the datasets it needs (`repro.papers.masktune.datasets`)."""

    def prepare(ctx: Context) -> None:
        from repro.papers.masktune.datasets import prepare_sources  # numpy and the dataset readers

        prepare_sources(ctx, names=names, skip_missing=skip_missing)

    return prepare


DATASETS_OF = {"figure2": ("biased_mnist",), "table1": ("celeba",), "table2": ("waterbirds",),
               "table3": ("in9l",), "table4": ("cifar10", "svhn", "cats_dogs"), "figure3": ("celeba", "waterbirds")}
