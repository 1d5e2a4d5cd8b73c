"""Viviano et al., "Underwhelming generalization improvements from controlling feature attribution"
(actdiff / gradmask; specs/actdiff.md, papers/actdiff.txt, arXiv 1910.00199 v1).

Every artefact is built: the synthetic Table 1, Figures 1, 3, 6 (synthetic part) and 7; Table 2 (synthetic and
MSD columns); the MSD Figures 4 and 8; the X-ray Figures 5a, 5b and 9.

Differences without a switch, because both readings give the same behaviour here: A-10 (subset in
ascending index order, the only order available), A-15 (square dilation = Gaussian then > 0, bit
identical), A-16 and A-19 (MSD/X-ray, with their loaders), A-18 (BCE/MSE reconstruction: the paper text
agrees with the code).
"""

from __future__ import annotations

from itertools import product
from typing import Any

from repro.config import MAX_SEEDS, Bounds, Profiles, RunConfig, Switch
from repro.papers import Context, NotPrepared, PlannedRun, Tolerance


SEMANTICS = "actdiff-2"  # bump when a change alters what a run computes

SWITCHES = (
    Switch("A-1", "selection_metric", "accuracy", "rocauc", "accuracy",
           "metric for best-epoch selection and tables: the code's 'AUC' is argmax accuracy"),
    Switch("A-2", "synthetic_test", "test", "test_clean", "test",
           "Table 2 synthetic column: HEAD test (inverted box) or distractor-free test; both are reported"),
    Switch("A-3", "unet_classify_mode", "ae", "unet", "ae",
           "synthetic 'UNet Classify' config is a Conv AE in the code"),
    Switch("A-4", "split_seed", "fixed", "run_seed", "fixed",
           "data subset drawn with seed 0 (code) or with the run seed (paper: independent splits)"),
    Switch("A-5", "act_point", "post_relu", "pre_relu", "post_relu",
           "UNet-family actdiff activations: post-ReLU (in-place ReLU in the code) or pre-ReLU (paper)"),
    Switch("A-6", "gradmask_norm", "l1", "l2", "l1",
           "gradmask: L1 sum over batch and pixels (code) or per-sample L2 norm summed (paper Eq. 2)"),
    Switch("A-7", "actdiff_distance", "code_channel_l2", "paper_layer_l2", "code_channel_l2",
           "actdiff: channel L2 per position, one mean over all (code) or per-layer L2 averaged (paper Eq. 1)"),
    Switch("A-8", "xray_masked_splits", "test", "all", "all",
           "X-ray Masked row: the code masks only test (duplicate YAML keys); the paper all splits"),
    Switch("A-9", "msd_intensity", "raw", "scaled", "raw", "MSD intensities raw (code) or (x+1024)/2048"),
    Switch("A-11", "lr_reading", "config", "literal", "config",
           "'10e-4' read as the configs' 1e-4 or literally as 1e-3"),
    Switch("A-12", "figure6_seeds", 10, 5, 5, "Figure 6 seeds: 5 (text, default) or 10 (captions)",
           Bounds(1, MAX_SEEDS)),
    Switch("A-13", "saliency", "contrast", "nonhealthy", "contrast",
           "figure saliency: |d|y0-y1|/dx| (code) or |d|y1|/dx| (paper); figures save both"),
    Switch("A-14", "saliency_model", "best", "final", "best", "figure model: best-valid (code) or final epoch (text)"),
    Switch("A-17", "table1_reading", "best", "final", "final",
           "Table 1 train/valid: at the final epoch (the values the table fits) or at the best-valid epoch; "
           "read from the stored results, no retraining"),
    Switch("A-20", "synth2_files", True, True, True,
           "synthetic data: the authors' synth2 .npy files when <data root>/synth2/ holds them (true), else the "
           "generator; false: always the generator"),
)

# Synthetic hyperparameters, each with its source.
SYNTHETIC = {
    "lr": {"config": 1e-4, "literal": 1e-3},  # A-11: config synth/base_synth.yml 1e-4; text "10e-4"
    "batch_size": 32,                          # §8.1, text
    "epochs": 500,                             # config base_synth.yml, Table 1 "Best Epoch (/500)"
    "lambda": 10.0,                            # §1.5: lambda_act = lambda_grad = lambda_recon = 10
    "n_train": 500, "n_valid": 128, "n_test": 128,  # §5.4, text "500/128/128"
    "blur": 0.5,                               # §5.4: mask blur sigma, all splits
    "nc": 16, "img_size": 28,                  # §10.2 model arguments
    "seeds": 10,                               # Table 1 caption; seeds 0-9 (§8.2)
}

# Profiles override named fields only; every output records its profile.
PROFILES = Profiles(
    SYNTHETIC,
    # Full-size data; epochs per architecture, or per "architecture method" where a row needs its own: the
    # Classify rows long enough to overfit, ResNet Actdiff to generalise, the rest a few epochs (~7 min on 2
    # CPU cores; the UNet family's Actdiff would need 40-60+ epochs, see repro.papers.actdiff.report).
    quick={"epochs": {"cnn": 10, "conv_ae": 3, "unet": 3, "resnet": 3, "conv_ae Classify": 30,
                      "resnet Gradmask": 2, "resnet Actdiff & Gradmask": 2, "resnet Classify Masked": 2},
           "seeds": 1},
    smoke={"epochs": 2, "n_train": 32, "n_valid": 32, "n_test": 32, "seeds": 1},  # §13.3 CI smoke
)

# Table 1 row order (Conv AE, CNN, ResNet, UNet); Table 2 uses another order, read from its CSV.
MODELS = {"Conv AE": "conv_ae", "CNN": "cnn", "ResNet": "resnet", "UNet": "unet"}
METHODS = {  # method -> (actdiff, gradmask, classify on masked inputs, reconstruct the shuffled input)
    "Classify": (False, False, False, False),
    "Actdiff": (True, False, False, False),
    "Gradmask": (False, True, False, False),
    "Actdiff & Gradmask": (True, True, False, False),
    "Classify Masked": (False, False, True, False),
    "Reconstruct Masked": (False, False, False, True),
}
ROWS = [(m, k) for m in MODELS for k in METHODS if not (m in ("CNN", "ResNet") and k == "Reconstruct Masked")]
MASK_FRACTIONS = (0.2, 0.4, 0.6, 0.8, 1.0)  # Appendix A, Fig. 6


def setting(ctx: Context, name: str) -> Any:
    """A synthetic-data setting under the context's profile."""
    return PROFILES.get(ctx.profile, name)


def epochs_of(ctx: Context, arch: str, method: str) -> int:
    """A synthetic run's epochs: the profile's number, or its entry for "arch method", else for the arch."""
    epochs = setting(ctx, "epochs")
    return epochs.get(f"{arch} {method}", epochs.get(arch)) if isinstance(epochs, dict) else epochs


def n_seeds(ctx: Context, default: int | None = None) -> int:
    if ctx.seeds is not None:
        return ctx.seeds
    return default if default is not None and ctx.profile == "paper" else setting(ctx, "seeds")


def row_objective(sw: dict[str, Any], method: str, arch: str, lam: float, recon_loss: str) -> dict[str, dict[str, Any]]:
    """A table row's loss terms (spec §2, §10.2): actdiff / gradmask at `lam`, and for the Conv AE and UNet the
    reconstruction (BCE synthetic, MSE MSD) of the input, or of the ROI-shuffled input for Reconstruct Masked."""
    act, grad, _, recon_masked = METHODS[method]
    objective: dict[str, dict[str, Any]] = {}
    if act:
        objective["actdiff"] = {"weight": lam, "distance": sw["actdiff_distance"]}
    if grad:
        objective["gradmask"] = {"weight": lam, "norm": sw["gradmask_norm"]}
    if arch != "cnn" and arch != "resnet":
        objective["recon"] = {"weight": lam, "loss": recon_loss, "target": "shuffled" if recon_masked else "input"}
    return objective


def row_model_args(sw: dict[str, Any], method: str, arch: str, img_size: int, nc: int, normrecon: bool
                   ) -> dict[str, Any]:
    """The architecture's arguments; the ResNet's linear layer size follows from `img_size` (4608 at 100 px)."""
    args: dict[str, Any] = {"img_size": img_size}
    if arch != "resnet":
        args |= {"nc": nc, "normrecon": normrecon}
        if METHODS[method][0]:
            args["act_point"] = sw["act_point"]
    return args


def synthetic_run(ctx: Context, model: str, method: str, seed: int, maxmasks: float = 1.0) -> PlannedRun:
    """The resolved config of one synthetic (model, method, seed) run (spec §10.2)."""
    sw = ctx.switches
    arch = MODELS[model]
    if model == "UNet" and method == "Classify" and sw["unet_classify_mode"] == "ae":
        arch = "conv_ae"  # A-3: synth_unet.yml is a copy of synth_ae.yml
    data = {"n_train": setting(ctx, "n_train"), "n_valid": setting(ctx, "n_valid"),
            "n_test": setting(ctx, "n_test"), "blur": SYNTHETIC["blur"], "split_seed": sw["split_seed"],
            "maxmasks": maxmasks, "mask_train_inputs": METHODS[method][2]}
    from repro.papers.actdiff.data_synth2_files import synth2_source

    data |= synth2_source(ctx) or {}  # the authors' files (A-20); generator runs keep their data settings
    config = RunConfig(
        paper="actdiff", dataset="synthetic", model=arch, method=method, seed=seed,
        epochs=epochs_of(ctx, arch, method), batch_size=SYNTHETIC["batch_size"],
        lr=SYNTHETIC["lr"][sw["lr_reading"]], data=data,
        model_args=row_model_args(sw, method, arch, SYNTHETIC["img_size"], SYNTHETIC["nc"], True),
        method_args={"objective": row_objective(sw, method, arch, SYNTHETIC["lambda"], "bce")},
        selection=f"valid/{sw['selection_metric']}", semantics=SEMANTICS)
    cell = {"model": model, "method": method, "seed": seed, "maxmasks": maxmasks}
    suffix = "" if maxmasks == 1 else f" masks {maxmasks:.0%}"
    return PlannedRun(f"{model} {method}{suffix} s{seed}", cell, config, n_train=data["n_train"],
                      image_size=SYNTHETIC["img_size"])


# MSD (Liver, Cardiac, Pancreas; spec §6, §10.1, §10.2): 2-D slices at 100 px, the same 22 rows.
MSD = {
    "lr": {"liver": {"config": 1e-4, "literal": 1e-3},     # A-11: base_livermsd.yml 1e-4; text "10e-4"
           "cardiac": {"config": 4e-3, "literal": 4e-3},   # base_cardiacmsd.yml and the text: 4e-3
           "pancreas": {"config": 1e-4, "literal": 1e-3}},  # base_pancreasmsd.yml 1e-4; text "10e-4"
    "epochs": 500, "batch_size": 32,  # base_<task>msd.yml; batch 32 with shuffling
    "lambda": 1.0,                    # §1.5: lambda = 1 for all terms
    "nc": 64,                         # §10.2: UNet nc 64, normrecon False (linear output, MSE)
}
# The cached slice sizes set the model's img_size (100, smoke 28: `msd_sources`); smoke narrows the UNet family.
MSD_PROFILES = Profiles(MSD, quick={"epochs": 3}, smoke={"epochs": 1, "nc": 4})
MSD_TASKS = ("liver", "cardiac", "pancreas")  # Table 2's column order


def msd_setting(ctx: Context, name: str) -> Any:
    return MSD_PROFILES.get(ctx.profile, name)


def msd_run(ctx: Context, task: str, model: str, method: str, seed: int) -> PlannedRun:
    """One MSD (task, model, method, seed) run on the task's prepared slices (`repro.papers.actdiff.msd_sources`)."""
    from repro.papers.actdiff.msd_sources import msd_source

    sw = ctx.switches
    arch = MODELS[model]  # the MSD *_unet.yml files do use mode 'unet' (A-3 is synthetic only)
    source = msd_source(ctx, task, 0 if sw["split_seed"] == "fixed" else seed)
    data = {"prepared": source["prepared"], "fingerprint": source["fingerprint"],
            "intensity": sw["msd_intensity"], "mask_train_inputs": METHODS[method][2]}
    config = RunConfig(
        paper="actdiff", dataset="msd", model=arch, method=method, seed=seed, epochs=msd_setting(ctx, "epochs"),
        batch_size=MSD["batch_size"], lr=MSD["lr"][task][sw["lr_reading"]], data=data,
        model_args=row_model_args(sw, method, arch, source["sizes"]["valid"], msd_setting(ctx, "nc"), False),
        method_args={"objective": row_objective(sw, method, arch, MSD["lambda"], "mse")},
        selection=f"valid/{sw['selection_metric']}", semantics=SEMANTICS)
    return PlannedRun(f"{task} {model} {method} s{seed}", {"task": task, "model": model, "method": method,
                                                           "seed": seed}, config)


def prepared_tasks(ctx: Context, tasks: tuple[str, ...] = MSD_TASKS) -> list[str]:
    """The tasks whose slices are prepared for every split seed the runs need (a dry-run: NotPrepared where a
    task's data is there but not prepared yet)."""
    from repro.papers.actdiff.data_msd import TASKS
    from repro.papers.actdiff.msd_sources import data_folder, prepared, split_seeds, synthetic

    ready = [t for t in tasks if all(prepared(ctx, t, s) for s in split_seeds(ctx, n_seeds(ctx)))]
    if ctx.dry_run:
        root = None if synthetic(ctx) else data_folder(ctx)
        waiting = [t for t in tasks if t not in ready and (synthetic(ctx) or root and (root / TASKS[t].folder).exists())]
        if waiting:
            raise NotPrepared(f"the MSD slices of {', '.join(waiting)} are not prepared yet")
    return ready


def plan_msd(ctx: Context, tasks: tuple[str, ...] = MSD_TASKS) -> list[PlannedRun]:
    """The 22 rows x seeds of each prepared task."""
    return [msd_run(ctx, t, m, k, s) for t in prepared_tasks(ctx, tasks) for (m, k), s in
            product(ROWS, range(n_seeds(ctx)))]


def plan_table2(ctx: Context) -> list[PlannedRun]:
    """Table 2: the synthetic grid and the MSD grid of every prepared task."""
    return plan_grid(ctx) + plan_msd(ctx)


# Figures 4 and 8 (spec §1.4): per task, ResNet and UNet x four methods, and UNet Reconstruct Masked; seed 0.
MAP_METHODS = ("Classify", "Actdiff", "Gradmask", "Actdiff & Gradmask")
MAP_PANELS = [(m, k) for m in ("ResNet", "UNet") for k in MAP_METHODS] + [("UNet", "Reconstruct Masked")]
FIGURE_TASKS = {"figure4": ("liver", "cardiac"), "figure8": ("pancreas",)}


def plan_maps(ctx: Context, tasks: tuple[str, ...]) -> list[PlannedRun]:
    """Seed 0 of each model a saliency figure shows, per task (the task's slices must be prepared)."""
    return [msd_run(ctx, t, m, k, 0) for t in tasks for m, k in MAP_PANELS]


def prepare_msd_tasks(ctx: Context, tasks: tuple[str, ...] = MSD_TASKS, skip_missing: bool = False) -> list[str]:
    """Cache the tasks' slices (see `repro.papers.actdiff.msd_sources.prepare_tasks`); returns the tasks skipped."""
    from repro.papers.actdiff.msd_sources import prepare_tasks

    return prepare_tasks(ctx, tasks, n_seeds(ctx), skip_missing)


# X-ray (NIH + PadChest emphysema, Fig. 5; spec §7, §8.1, §10): ResNetSmall at 128 px, Adam 1e-3, 100 epochs.
XRAY = {"lr": 1e-3, "epochs": 100, "batch_size": 32, "img_size": 128, "base_size": 8192,  # base_xray.yml
        "lambda": 1.0}  # xray_resnet_{actdiff,gradmask}.yml: lambda_act / lambda_grad 1
XRAY_ROWS = {  # Fig. 5b row -> (SPC ratio, penalties, masked inputs)
    "Classify balanced (no SPC; ratio 0.5)": (0.5, (), False),
    "Classify SPC 90%": (0.9, (), False),
    "Actdiff SPC 90%": (0.9, ("actdiff",), False),
    "Gradmask SPC 90%": (0.9, ("gradmask",), False),
    "Masked inputs SPC 90%": (0.9, (), True),
}
# 128 px ResNet: slow on a CPU. `limit` (images per split) is None at paper settings: every image.
XRAY_PROFILES = Profiles(XRAY, quick={"epochs": 4, "limit": 64}, smoke={"epochs": 1, "limit": 8})


def xray_run(ctx: Context, row: str, seed: int) -> PlannedRun:
    """One Fig. 5b run: the row's SPC split (prepared by `repro.papers.actdiff.xray_sources`), objective and masking
    (A-8)."""
    from repro.papers.actdiff.xray_sources import xray_source

    ratio, penalties, masked = XRAY_ROWS[row]
    sw = ctx.switches
    source = xray_source(ctx, ratio)
    objective: dict[str, dict[str, Any]] = {}
    if "actdiff" in penalties:
        objective["actdiff"] = {"weight": XRAY["lambda"], "distance": sw["actdiff_distance"]}
    if "gradmask" in penalties:
        objective["gradmask"] = {"weight": XRAY["lambda"], "norm": sw["gradmask_norm"]}
    splits = ("train", "valid", "test") if sw["xray_masked_splits"] == "all" else ("test",)
    data = {"prepared": source["prepared"], "fingerprint": source["fingerprint"],
            "masked_splits": list(splits) if masked else [], "limit": XRAY_PROFILES.get(ctx.profile, "limit")}
    config = RunConfig(
        paper="actdiff", dataset="xray", model="resnet", method=row, seed=seed,
        epochs=XRAY_PROFILES.get(ctx.profile, "epochs"), batch_size=XRAY["batch_size"], lr=XRAY["lr"], data=data,
        model_args={"img_size": XRAY["img_size"], "base_size": XRAY["base_size"]},
        method_args={"objective": objective}, selection=f"valid/{sw['selection_metric']}", semantics=SEMANTICS)
    return PlannedRun(f"X-ray {row} s{seed}", {"row": row, "seed": seed}, config)


def plan_xray(ctx: Context) -> list[PlannedRun]:
    """Fig. 5b's five rows x seeds."""
    return [xray_run(ctx, row, s) for row, s in product(XRAY_ROWS, range(n_seeds(ctx)))]


def plan_xray_maps(ctx: Context) -> list[PlannedRun]:
    """Fig. 5a: one seed (0) of each row's model."""
    return [xray_run(ctx, row, 0) for row in XRAY_ROWS]


def plan_grid(ctx: Context) -> list[PlannedRun]:
    """All 22 synthetic rows x seeds (Tables 1, 2 and Figure 7 share them)."""
    return [synthetic_run(ctx, m, k, s) for (m, k), s in product(ROWS, range(n_seeds(ctx)))]


FIGURE3_PANELS = [("CNN", "Classify"), ("CNN", "Classify Masked"), ("UNet", "Actdiff"),
                  ("ResNet", "Actdiff"), ("UNet", "Gradmask")]


def plan_figure3(ctx: Context) -> list[PlannedRun]:
    """One seed (0) of each model shown in Figure 3."""
    return [synthetic_run(ctx, m, k, 0) for m, k in FIGURE3_PANELS]


def plan_figure6(ctx: Context) -> list[PlannedRun]:
    """UNet and ResNet Actdiff at each fraction of training masks kept (A-12 seeds)."""
    seeds = n_seeds(ctx, ctx.switches["figure6_seeds"])
    return [synthetic_run(ctx, m, "Actdiff", s, p)
            for m, p, s in product(("UNet", "ResNet"), MASK_FRACTIONS, range(seeds))]


ACCURACY_TOL = Tolerance(abs=0.05, k_std=2.0)
EPOCH_TOL = Tolerance(abs=25.0, k_std=2.0)
