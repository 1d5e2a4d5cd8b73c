"""Chang, Adam, Goldenberg, "Towards Robust Classification Model by Counterfactual and Invariant Data
Generation" (CVPR 2021; specs/cfaug.md, papers/cfaug.txt).

Every table cell is a config of §2 (CF infill, F infill, Sal λ, or the Mixup / LS baselines) trained with seeds
5, 10 and 100 on a BiT ResNet-v2 50x1 by `repro.papers.cfaug.train`; the tables are built in
`repro.papers.cfaug.report`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from repro.config import Bounds, Profiles, RunConfig, Switch
from repro.papers import Context, PlannedRun

SEMANTICS = "cfaug-2"  # 2: IN-9 any-channel fg mask (C-26), CCT crop range over the boxes' union
SEEDS = (5, 10, 100)  # the authors' README (§2)

SWITCHES = (
    Switch("C-1", "in9_init", "bit_s", "scratch", "scratch",
           "IN-9 initialisation: random (the paper: no fine-tuning) or BiT-S, which the code loads by default"),
    Switch("C-2", "sal_target", "batch_labels", "per_sample", "batch_labels",
           "Sal gradient of sum_i sum_j z_i[y_j], every label of the batch (code), or of z_i[y_i] (paper)"),
    Switch("C-3", "sal_norm", "mean_all", "bg_area", "mean_all",
           "Sal mean over all n*3*H*W entries (code) or divided by the background area (paper)"),
    Switch("C-4", "loss_norm", "joint", "separate", "joint",
           "CE and CF loss summed and divided by the whole batch count (code) or separate means (paper)"),
    Switch("C-5", "shuffle", "batch_all", "region", "batch_all",
           "Shuffle infill: one permutation of the whole batch tensor (code) or of each region's pixels (paper)"),
    Switch("C-6", "tile_x0_bug", True, False, True,
           "IN-9 Tile and Mixed-Rand: a fg box at column 0 returns the original image / whole donor (code bug)"),
    Switch("C-7", "preproc", "code", "paper", "code",
           "train squash-resize 256 + bbox-constrained crop, eval squash 224 (code), or scale + centre crop (paper)"),
    Switch("C-10", "precision", "auto", "fp32", "auto",
           "fp16 AMP for runs without Sal and fp32 for Sal runs, on CUDA (code and appendix), or fp32 throughout"),
    Switch("C-11", "grad_clip", 1.0, 0.0, 1.0, "gradient-norm clipping at total norm 1.0 (code) or none (paper); 0 = no clipping",
           Bounds(0.0)),
    Switch("C-13", "wb_fgsm_eps", 0.6, 0.5, 0.5,
           "Waterbirds F(FGSM) epsilon, which the paper does not state: 0.5 as for IN-9 and CCT, or the code's 0.6",
           Bounds(0.0, open_low=True)),
    Switch("C-20", "dls_relu", "functional", "modules", "functional",
           "DeepLiftShap rules only where the authors' BiT had ReLU modules (code; the body's are functional), or "
           "at every ReLU"),
    Switch("C-23", "auc_scores", "logits", "softmax", "logits", "CCT macro AUC on raw logits (code) or softmax"),
    Switch("C-24", "std_ddof", 1, 1, 1, "std over seeds: sample (ddof 1, repro convention) or 0", (0, 1)),
    Switch("C-26", "in9_fg_mask", "code", "all_channel", "code",
           "IN-9 train fg mask (CF rectangle, F keep region, Sal background): a pixel whose no_fg twin is 0 and "
           "differs in any channel (code), or in every channel; the crop bbox takes every channel in both"),
    Switch("C-27", "cf_loss", "code", "stable", "stable",
           "CF loss -log(1 - p_c) with 1 - p_c as sum_{k!=c} e^(z_k-M) (stable), or as "
           "sum_k e^(z_k-M) - e^(z_c-M) (code), which cancels to 0 in fp32 once 1 - p_c < ~6e-8"),
)

# §6.2-6.4 (Table 8 and the code): per dataset, its optimiser, schedule, epochs, batch and model selection.
RECIPES: dict[str, dict[str, Any]] = {
    "in9": {"classes": 9, "epochs": 25, "batch_size": 32, "lr": 0.05,
            "optimizer": {"name": "sgd", "momentum": 0.9, "weight_decay": 1e-4},
            "schedule": {"kind": "multistep", "milestones": [6, 12, 18], "gamma": 0.1},
            "metric": "accuracy", "head_init": "default"},
    "waterbirds": {"classes": 2, "epochs": 40, "batch_size": 32, "lr": 8e-4,
                   "optimizer": {"name": "sgd", "momentum": 0.9, "weight_decay": 1e-4},
                   "schedule": {"kind": "plateau", "factor": 0.1, "patience": 1, "threshold": 1e-4},  # on val CE (C-17)
                   "metric": "accuracy", "head_init": "default"},
    "cct": {"classes": 15, "epochs": 50, "batch_size": 64, "lr": 0.003,
            "optimizer": {"name": "rmsprop", "momentum": 0.9, "weight_decay": 0.0, "alpha": 0.99, "eps": 1e-8},
            "schedule": {"kind": "multistep", "milestones": [15, 30, 45], "gamma": 0.1},
            "metric": "auc", "head_init": "zero"},  # C-25: the code zeroes the CCT head
}
EVAL_SPLITS = {"in9": ("val", "original", "mixed_same", "mixed_rand", "mixed_next"),
               "waterbirds": ("val", "original", "flip"), "cct": ("val", "cis_test", "trans_test")}
WORKERS = 4  # §6.1: train loader workers
EVAL_BATCH = 256  # §6.1


@dataclass(frozen=True)
class Row:
    """One config of §2: its table label (the published `method` and `hparam`) and its settings."""

    method: str
    hparam: str = ""
    cf: str | None = None
    f: str | None = None
    sal: float = 0.0
    mixup: float = 0.0
    ls: float = 0.0
    fgsm_eps: float | None = None  # None: the dataset's (0.5; Waterbirds under the C-13 switch)


def _combo(cf: str | None, f: str | None, sal: float, sal_label: str = "") -> Row:
    names = {"grey": "CF(Grey)", "random": "CF(Random)", "shuffle": "CF(Shuffle)", "tile": "CF(Tile)",
             "cagan": "CF(CAGAN)"}
    fnames = {"random": "F(Random)", "shuffle": "F(Shuffle)", "mrand": "F(Mixed-Rand)", "fgsm": "F(FGSM)"}
    parts = ([names[cf]] if cf else []) + ([fnames[f]] if f else []) + (["Sal"] if sal else [])
    return Row("+".join(parts), sal_label, cf=cf, f=f, sal=sal)


def _rows(sal: float, sal_text: str, extra_sal: tuple[float, str], combos: list[Row],
          mixup: tuple[float, str], ls: tuple[float, str], fgsm: str, f_infills: tuple[str, ...]) -> list[Row]:
    """Tables 1/4/6 in the paper's group order (§11): Orig, Sal, CF..., F..., combinations, Mixup, LS; then the
    saliency table's extra Sal row (Tables 2/5/7)."""
    rows = [Row("Orig"), Row("Sal", f"lambda={sal_text}", sal=sal)]
    rows += [_combo(cf, None, 0.0) for cf in ("grey", "random", "shuffle", "tile", "cagan")]
    rows += [_combo(None, f, 0.0) for f in f_infills]
    rows.append(Row("F(FGSM)", fgsm, f="fgsm"))
    rows += combos
    rows += [Row("Mixup", f"alpha={mixup[1]}", mixup=mixup[0]), Row("LS", f"eps={ls[1]}", ls=ls[0])]
    rows.append(Row("Sal", f"lambda={extra_sal[1]}", sal=extra_sal[0]))
    return rows


def sweep_rows(dataset: str) -> list[Row]:
    """§2.4: one config per grid value of Sal λ, FGSM ε, Mixup α and LS ε (the planner drops those equal to a
    table config, by run key)."""
    sal = GRIDS["sal"] + ((1e4,) if dataset == "cct" else ())
    return ([Row("Sal", f"lambda={v:g}", sal=v) for v in sal] +
            [Row("F(FGSM)", f"eps={v:g}", f="fgsm", fgsm_eps=v) for v in GRIDS["fgsm"]] +
            [Row("Mixup", f"alpha={v:g}", mixup=v) for v in GRIDS["mixup"]] +
            [Row("LS", f"eps={v:g}", ls=v) for v in GRIDS["ls"]])


ROWS: dict[str, list[Row]] = {
    "in9": _rows(1e-4, "1e-4", (100.0, "100"), [
        _combo("cagan", "shuffle", 0.0), _combo("cagan", None, 1e-4, "lambda=1e-4?"),
        _combo(None, "shuffle", 1e-4, "lambda=1e-4?"), _combo("cagan", "shuffle", 1e-4, "lambda=1e-4?")],
        (0.2, "0.2"), (0.1, "0.1"), "eps=0.5", ("random", "shuffle")),
    "waterbirds": _rows(10.0, "10", (1e3, "1e3"), [
        _combo("cagan", "random", 0.0), _combo("cagan", "random", 10.0, "lambda=10?")],
        (0.1, "0.1"), (0.1, "0.1"), "eps=?", ("random", "shuffle")),
    "cct": _rows(100.0, "100", (1e4, "1e4"), [
        _combo("tile", None, 100.0, "lambda=100?"), _combo("tile", "shuffle", 0.0),
        _combo(None, "shuffle", 100.0, "lambda=100?"), _combo("tile", "shuffle", 100.0, "lambda=100?")],
        (0.2, "0.2"), (0.2, "0.2"), "eps=0.5", ("random", "shuffle", "mrand")),
}
TABLE_DATASET = {"table1": "in9", "table4": "waterbirds", "table6": "cct"}
# §1.9 / §2.4: the paper's hyperparameter grids; the scatter figures plot every model trained, grids included
# (CCT's Sal grid adds the 1e4 of Table 7, C-12).
GRIDS = {"sal": (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1000.0), "fgsm": (0.15, 0.25, 0.35, 0.5, 0.6, 0.75, 0.9),
         "mixup": (0.1, 0.2, 0.3), "ls": (0.05, 0.1, 0.2)}
# Figures 4, 7, 10: the dataset and its two panels (evaluation sets), with the R^2 the captions / text print (§1.9).
SCATTERS = {"figure4": ("in9", ("original", "mixed_next"), {"mixed_next": 0.4}),
            "figure7": ("waterbirds", ("original", "flip"), {"flip": 0.08, "original": 0.004}),
            "figure10": ("cct", ("cis_test", "trans_test"), {"trans_test": 0.16, "cis_test": 0.07})}
# Tables 2, 5, 7 (§1.2, 1.5, 1.7): saliency AUPR and accuracy/AUC of some accuracy-table configs on two sets.
SALIENCY_TABLES = {"table2": ("in9", ("original", "mixed_next")), "table5": ("waterbirds", ("original", "flip")),
                   "table7": ("cct", ("cis_test", "trans_test"))}
# Table 3 (§1.3, inferred rows): next-class probability shift between Mixed-Next and Original.
# Qualitative figures (§1.10): the configs whose selected checkpoints they compare, first seed only.
EXAMPLE_ROWS = {"figure1": ("in9", ("Orig|",)),
                "figure6": ("in9", ("Orig|", "CF(CAGAN)+F(Shuffle)+Sal|lambda=1e-4?")),
                "figure8": ("waterbirds", ("Orig|", "CF(CAGAN)+F(Random)+Sal|lambda=10?")),
                "figure9": ("cct", ("Orig|", "CF(Tile)+Sal|lambda=100?")),
                "figure11": ("in9", ("Orig|", "CF(CAGAN)+F(Shuffle)+Sal|lambda=1e-4?")),
                "figure12": ("cct", ("Orig|", "CF(Tile)+Sal|lambda=100?"))}
# Figure 5 (§2.4; ratios, methods and test set are not recoverable from the paper, these are the spec's defaults).
RATIOS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
RATIO_ROWS = ("Orig|", "CF(CAGAN)|", "F(Shuffle)|", "CF(CAGAN)+F(Shuffle)+Sal|lambda=1e-4?")
RATIO_SET = "mixed_next"
EXAMPLE_TITLES = {
    "figure1": "A counterfactual image lowers p(label) and a factual one raises it, under the Orig model",
    "figure6": "IN-9 Mixed-Next examples that CF(CAGAN)+F(Shuffle)+Sal gets right and Orig wrong",
    "figure8": "Waterbirds Flip examples that CF(CAGAN)+F(Random)+Sal gets right and Orig wrong",
    "figure9": "CCT Trans examples that CF(Tile)+Sal gets right and Orig wrong",
    "figure11": "Random IN-9 Mixed-Next examples with both models' top-5 predictions",
    "figure12": "Random CCT Trans examples with both models' top-5 predictions"}
SHIFT_ROWS = ("Orig|", "Sal|lambda=1e-4", "CF(CAGAN)|", "F(Shuffle)|", "CF(CAGAN)+F(Shuffle)+Sal|lambda=1e-4?")
# §9 quick profile rows: Orig, Sal, CF(Grey), CF(Tile), F(Random), F(Shuffle), the best CF+F+Sal combination,
# and CF(CAGAN) where its infills exist.
QUICK_ROWS = {"in9": ("Orig", "Sal|lambda=1e-4", "CF(Grey)", "CF(Tile)", "F(Random)", "F(Shuffle)",
                      "CF(CAGAN)+F(Shuffle)+Sal|lambda=1e-4?", "CF(CAGAN)"),
              "waterbirds": ("Orig", "Sal|lambda=10", "CF(Grey)", "CF(Tile)", "F(Random)", "F(Shuffle)",
                             "CF(CAGAN)+F(Random)+Sal|lambda=10?", "CF(CAGAN)"),
              "cct": ("Orig", "Sal|lambda=100", "CF(Grey)", "CF(Tile)", "F(Random)", "F(Shuffle)",
                      "CF(Tile)+F(Shuffle)+Sal|lambda=100?", "CF(CAGAN)")}

# Reduced profiles (§9). quick: BiT at 64 px, 2 epochs, subsets; smoke: a tiny ResNet-v2 at 32 px on synthetic
# data in the official layouts, 1 epoch of 2 batches. Epochs and batch size default to each dataset's recipe.
PROFILES = Profiles(
    {"seeds": SEEDS, "size": 224, "model": "bit_r50x1", "workers": WORKERS, "limits": {},
     "saliency": {"images": None, "baselines": 20}},  # §7.3: every test image, 20 baselines
    quick={"seeds": (5,), "size": 64, "saliency": {"images": 64, "baselines": 4}, "epochs": 2, "workers": 2,
           "limits": {
               "in9": {"train": 360, "val": 90, "original": 180, "mixed_same": 180, "mixed_rand": 180,
                       "mixed_next": 180},
               "waterbirds": {"train": 400, "val": 200, "original": 200, "flip": 200},
               "cct": {"train": 600, "val": 300, "cis_test": 300, "trans_test": 300}}},
    smoke={"seeds": (5, 10), "size": 32, "saliency": {"images": 8, "baselines": 2}, "epochs": 1, "workers": 0,
           "model": "bit_tiny", "batch_size": 8, "limits": {d: {"train": 16} for d in RECIPES}},
)


def profile_setting(ctx: Context, name: str, default: Any = None) -> Any:
    """A setting under the context's profile (`default`: the dataset recipe's value, for epochs and batch size)."""
    return PROFILES.get(ctx.profile, name, default)


def seeds(ctx: Context) -> tuple[int, ...]:
    """The first `--seeds N` of the authors' seeds (more than three continue 101, 102, ...)."""
    base = profile_setting(ctx, "seeds")
    n = ctx.seeds or len(base)
    return tuple(base[:n]) + tuple(range(SEEDS[-1] + 1, SEEDS[-1] + 1 + max(0, n - len(base))))


def _schedule(recipe: dict[str, Any], epochs: int) -> dict[str, Any]:
    """The recipe's schedule; milestones scaled to a reduced profile's epochs (§9: [1] for 2 epochs)."""
    s = dict(recipe["schedule"])
    if s["kind"] == "multistep" and epochs != recipe["epochs"]:
        s["milestones"] = sorted({max(1, round(m * epochs / recipe["epochs"])) for m in s["milestones"]
                                  if round(m * epochs / recipe["epochs"]) < epochs} or {max(1, epochs // 2)})
    return s


def init_for(ctx: Context, dataset: str) -> str:
    """The BiT model's init: "bit_s", or "random" for IN-9 under C-1's default `scratch`; WB and CCT load BiT-S."""
    return "random" if dataset == "in9" and ctx.switches["in9_init"] == "scratch" else "bit_s"


def model_init(model: str, init: str) -> str:
    """What a model configured with `init` starts from: `init` for BiT-R50x1, "random" for the smoke profile's
    tiny ResNet-v2, for which no pretrained weights exist."""
    return init if model == "bit_r50x1" else "random"


def method_args(ctx: Context, dataset: str, row: Row, recipe: dict[str, Any], epochs: int) -> dict[str, Any]:
    """The objective (`repro.papers.cfaug.losses.CfaugMethod` fields) and the trainer's settings of one config."""
    default_eps = ctx.switches["wb_fgsm_eps"] if dataset == "waterbirds" else 0.5  # C-13
    fgsm_eps = default_eps if row.fgsm_eps is None else row.fgsm_eps
    sw = ctx.switches
    return {"trainer": "cfaug", "cf": row.cf, "f": row.f, "sal": row.sal, "mixup": row.mixup, "ls": row.ls,
            "cf_loss": "logp", "cf_form": sw["cf_loss"], "fgsm_eps": fgsm_eps if row.f == "fgsm" else 0.5,
            "sal_target": sw["sal_target"], "sal_norm": sw["sal_norm"], "loss_norm": sw["loss_norm"],
            "shuffle": sw["shuffle"], "tile_x0_bug": sw["tile_x0_bug"], "tile_bbox": dataset == "in9",
            "cf_rectangle": dataset != "cct",
            "schedule": _schedule(recipe, epochs), "precision": sw["precision"], "grad_clip": sw["grad_clip"],
            "workers": profile_setting(ctx, "workers"), "eval_batch": EVAL_BATCH,
            "auc_scores": sw["auc_scores"]}


def run_config(ctx: Context, dataset: str, row: Row, seed: int, source: dict[str, Any]) -> RunConfig:
    """One run of config `row` on `dataset` at the spec's settings for the profile; `source` is the dataset's
    recorded source (`repro.papers.cfaug.sources`)."""
    r = RECIPES[dataset]
    epochs = profile_setting(ctx, "epochs", r["epochs"])
    limits = profile_setting(ctx, "limits").get(dataset)
    data: dict[str, Any] = {"name": dataset, "prepared": source["prepared"], "fingerprint": source["fingerprint"],
                            "size": profile_setting(ctx, "size"), "preproc": ctx.switches["preproc"],
                            "cagan": "cagan" in (row.cf, row.f)}
    if dataset == "in9":
        data["fg_mask"] = ctx.switches["in9_fg_mask"]
    if limits:
        data["limits"] = limits
    model = profile_setting(ctx, "model")
    return RunConfig(paper="cfaug", dataset=dataset, model=model, method=row.method, seed=seed, epochs=epochs,
                     batch_size=profile_setting(ctx, "batch_size", r["batch_size"]), lr=r["lr"], data=data,
                     model_args={"num_classes": r["classes"], "init": init_for(ctx, dataset),
                                 "head_init": r["head_init"]},
                     method_args=method_args(ctx, dataset, row, r, epochs), optimizer=dict(r["optimizer"]),
                     metrics=(r["metric"],), selection=f"val/{r['metric']}", semantics=SEMANTICS)


def rows_for(ctx: Context, dataset: str, source: dict[str, Any], only: tuple[str, ...] | None = None) -> list[Row]:
    """The configs named `only` ("method|hparam"), or else the accuracy table's for the profile: all in paper and
    smoke, §9's selection in quick. Outside the paper profile, CF(CAGAN) rows only where the infills exist."""
    wanted = only or (QUICK_ROWS[dataset] if ctx.profile == "quick" else None)
    rows = [r for r in ROWS[dataset] if wanted is None or r.method in wanted or f"{r.method}|{r.hparam}" in wanted]
    if ctx.profile != "paper" and not source.get("cagan"):
        rows = [r for r in rows if "cagan" not in (r.cf, r.f)]
    return rows


def saliency_settings(ctx: Context) -> dict[str, Any]:
    """§7.3 at paper settings (every test image, 20 baselines); §9's reduced sizes otherwise."""
    return {**profile_setting(ctx, "saliency"), "relu": ctx.switches["dls_relu"]}


def planned(ctx: Context, dataset: str, row: Row, seed: int, source: dict[str, Any]) -> PlannedRun:
    """The run of config `row` with `seed`, labelled and keyed by its table cell."""
    return PlannedRun(f"{dataset} {row.method} {row.hparam} s{seed}".replace("  ", " "),
                      {"dataset": dataset, "method": row.method, "hparam": row.hparam, "seed": seed},
                      run_config(ctx, dataset, row, seed, source))


def plan(ctx: Context, dataset: str, only: tuple[str, ...] | None = None, first_seed: bool = False
         ) -> list[PlannedRun]:
    """Every config of the dataset's accuracy table (§2.1-2.3), or those named `only` ("method|hparam"), x seeds
    (the first only, with `first_seed`)."""
    from repro.papers.cfaug.sources import source_for

    source = source_for(ctx, dataset)
    return [planned(ctx, dataset, row, seed, source) for row in rows_for(ctx, dataset, source, only)
            for seed in (seeds(ctx)[:1] if first_seed else seeds(ctx))]


def prepare_for(dataset: str | None) -> Callable[[Context], None]:
    """An artefact's `prepare`: record the source of `dataset` (None: each of the three present)."""

    def prepare(ctx: Context) -> None:
        from repro.papers.cfaug.sources import prepare_source  # numpy, and this module

        prepare_source(ctx, dataset=dataset, needs_bit_s=needs_bit_s)

    return prepare


def needs_bit_s(ctx: Context, dataset: str) -> bool:
    """Whether the runs of `dataset` start from BiT-S R50x1 (§4), whose npz must then be beside the data."""
    return profile_setting(ctx, "model") == "bit_r50x1" and init_for(ctx, dataset) == "bit_s"


def scatter_plan(ctx: Context, dataset: str) -> list[PlannedRun]:
    """Figures 4, 7, 10: every config of the dataset's tables and the §2.4 grids, x seeds, each run once."""
    from repro.papers.cfaug.sources import source_for

    source = source_for(ctx, dataset)
    runs, keys = [], set()
    for row in rows_for(ctx, dataset, source) + sweep_rows(dataset):
        for seed in seeds(ctx):
            run = planned(ctx, dataset, row, seed, source)
            if run.config.key not in keys:
                keys.add(run.config.key)
                runs.append(run)
    return runs


def ratio_plan(ctx: Context) -> list[PlannedRun]:
    """Figure 5: IN-9 configs `RATIO_ROWS` x training-data ratios x seeds; ratio 1 is Table 1's run itself."""
    from repro.papers.cfaug.sources import source_for

    source = source_for(ctx, "in9")
    runs = []
    for row in rows_for(ctx, "in9", source, RATIO_ROWS):
        for ratio in RATIOS:
            for seed in seeds(ctx):
                cfg = run_config(ctx, "in9", row, seed, source)
                if ratio != 1:
                    cfg = cfg.replace(data={**cfg.data, "data_ratio": ratio})
                runs.append(PlannedRun(f"in9 {row.method} ratio {ratio:g} s{seed}",
                                       {"dataset": "in9", "method": row.method, "hparam": row.hparam,
                                        "ratio": ratio, "seed": seed}, cfg))
    return runs


def _saliency_rows(name: str) -> tuple[str, ...]:
    from repro.report.tables import read_published

    published = read_published("cfaug", name)
    return tuple(dict.fromkeys(f"{m}|{h}" for m, h in zip(published["method"], published["hparam"])))
