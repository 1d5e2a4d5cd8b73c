"""TAP Table 1: training it/s and peak memory of No XS, RRR, RBR and TAP per architecture, measured here
(`repro.papers.tap.table1_timing`), beside the paper's RTX 3080 numbers and the authors' code on an H100
(spec §1.1)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from repro.config import Profiles
from repro.papers.tap.table1_timing import GIB, OOM_GIB, Settings, benchmark, build_for_timing, release
from repro.papers import Context, PlannedRun
from repro.papers.tap import mnist as paper
from repro.provenance import device_name
from repro.report.artefacts import artefact_provenance, output_path
from repro.report.tables import read_published, write_table
from repro.runs.store import RunStore
from repro.seeding import resolve_device

ARCHS = ("vgg16", "resnet18", "densenet121")  # Table 1's columns
METHODS = ("No XS", "RRR", "RBR", "TAP")  # Table 1's rows
PENALTY_WEIGHT = 1.0  # lambda does not change a step's cost

PROFILES = Profiles(
    {"batch_size": 16,  # §1.1 Table 1: training batches of 16 (DenseNet-121 + RBR OOMs there on 10 GB)
     "image_size": 224,  # §1.1: 224x224
     "warmup": 20, "timed": 100,  # §1.1 recommended measurement: >= 20 warm-up, >= 100 timed
     "modes": ("device", "loader")},  # §1.1: with the data loader and with pre-loaded GPU tensors
    quick={"batch_size": 4, "image_size": 64, "warmup": 1, "timed": 2},
    smoke={"batch_size": 2, "image_size": 32, "warmup": 1, "timed": 2, "modes": ("device",)},
)
MODEL_INIT = "random"  # weights do not change a step's cost; random init needs no download
DETERMINISTIC = True  # as repro's engine trains (seed_everything); the authors' code leaves PyTorch defaults
SYNTHETIC = ("synthetic pixels and labels (uniform uint8 grey images, random labels of 2 classes) with a 22x44 "
             "tag-box mask in a random corner, scaled to the image size; a step's cost does not depend on the values")
H100_NOTE = ("authors_code_h100_it_s: the issue's targets, the authors' code on an H100, fp32, data on the GPU, "
             "median of 100 steps after 20 warm-up (papers/published/tap_table1_h100_authors.csv)")


def objective_spec(method: str, switches: dict[str, Any]) -> dict[str, Any]:
    """The objective of a Table 1 row, with the context's D-1, D-2, D-5 and D-9 switches."""
    return paper.penalty_objective(method, PENALTY_WEIGHT, switches)


def measure_rows(ctx: Context, device: Any) -> list[dict[str, Any]]:
    """One row per (arch, mode, method) with the measured speed and memory (one model built per arch)."""
    prof = PROFILES.settings(ctx.profile)
    rows = []
    for arch in ARCHS:
        base = Settings(prof["batch_size"], prof["image_size"], prof["warmup"], prof["timed"], init=MODEL_INIT,
                        deterministic=DETERMINISTIC)
        model = build_for_timing(arch, base, **paper.arch_args(arch, ctx.switches))
        for mode in prof["modes"]:
            s = replace(base, mode=mode)
            for method in METHODS:
                timing = benchmark(model, objective_spec(method, ctx.switches), s, device)
                rows.append({"arch": arch, "method": method, "batch": s.batch_size, "image_size": s.image_size,
                             "mode": mode, **timing.to_dict()})
        del model
        release(device)
    return rows


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _ratio(value: str, base: str) -> str:
    """value / base of two printed numbers, as text; the printed non-number (e.g. OOM) if either is one."""
    for text in (value, base):
        if not _is_number(text):
            return text
    return f"{float(value) / float(base):.3f}"


def published_columns(pub: pd.DataFrame, arch: str, method: str) -> dict[str, str]:
    """From the paper's table (`loss` as index): the printed it/s and GB of one cell and their ratios to
    No XS (text, OOM kept)."""
    it, mem = pub.loc[method, f"{arch}_it_s"], pub.loc[method, f"{arch}_mem_gb"]
    it0, mem0 = pub.loc["No XS", f"{arch}_it_s"], pub.loc["No XS", f"{arch}_mem_gb"]
    return {"paper_it_s": it, "paper_mem_gb": mem, "paper_ratio_it_s_vs_noxs": _ratio(it, it0),
            "paper_ratio_mem_vs_noxs": _ratio(mem, mem0)}


def authors_h100() -> pd.DataFrame:
    """The authors' code on an H100 (the issue's anchors): arch, method, it/s."""
    return read_published("tap", "table1_h100_authors")[["arch", "method", "it_s"]].astype({"it_s": float})


RBR_NOTE = "our RBR step skips the authors' unused eval forward pass (8-14% faster than their step on CPU)"


def assemble(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Measured rows with ratios to No XS (same arch and mode) and the published numbers beside."""
    t = pd.DataFrame(rows)
    noxs = t[t["method"] == "No XS"].set_index(["arch", "mode"])
    key = pd.MultiIndex.from_frame(t[["arch", "mode"]])
    t["ratio_it_s_vs_noxs"] = t["it_s"].values / noxs["it_s"].reindex(key).values
    t["ratio_mem_vs_noxs"] = t["mem_reserved_gb"].values / noxs["mem_reserved_gb"].reindex(key).values
    printed = read_published("tap", "table1").set_index("loss")
    pub = pd.DataFrame([published_columns(printed, a, m) for a, m in zip(t["arch"], t["method"])])
    h100 = authors_h100().rename(columns={"it_s": "authors_code_h100_it_s"})
    h100["authors_code_h100_ratio_it_s_vs_noxs"] = h100["authors_code_h100_it_s"] / h100["arch"].map(
        h100[h100["method"] == "No XS"].set_index("arch")["authors_code_h100_it_s"])
    t = pd.concat([t, pub], axis=1).merge(h100, on=["arch", "method"], how="left")
    t["note"] = t["method"].map({"RBR": RBR_NOTE}).fillna("")
    return t.drop(columns=["steps"])


def table1(ctx: Context, runs: list[PlannedRun], store: RunStore) -> list[Path]:
    """Measure every (arch, method, mode) on ctx.device and write tables/tap/table1.csv with provenance."""
    device = resolve_device(ctx.device)
    table = assemble(measure_rows(ctx, device))
    prof = PROFILES.settings(ctx.profile)
    prov = artefact_provenance(
        ctx, "table1", runs, store, device=device_name(device), settings=dict(prof), model_init=MODEL_INIT,
        deterministic_kernels=DETERMINISTIC, optimizer="SGD lr 1e-5 momentum 0.9 (the authors' code)", dtype="float32",
        penalty_weight=PENALTY_WEIGHT, pixels=SYNTHETIC,
        timing="it_s = 1 / median step time (CUDA events, no host sync between steps; perf_counter on CPU); "
               "it_s_mean = timed steps / wall time between two synchronisations",
        memory=f"GiB ({GIB} bytes): torch.cuda.max_memory_reserved / max_memory_allocated after "
               f"reset_peak_memory_stats, from the first warm-up step; device mode includes the pre-loaded "
               f"uint8 images and bool masks of every step (2 x steps x batch x size^2 bytes, 0.18 GiB on the "
               f"paper profile); NaN on CPU; nvidia-smi reads about "
               f"0.3-0.6 GB higher (the CUDA context); oom_10gb = reserved > {OOM_GIB:g} GiB",
        modes="device: batches pre-loaded on the device; loader: torch DataLoader over CPU tensors "
              "(num_workers 4 and pin_memory on CUDA, 0 workers on CPU), copied to the device every step",
        anchors=H100_NOTE)
    path = write_table(table, output_path(ctx, "table1", "table"), prov)
    print_table1(table, f"TAP Table 1 on {device_name(device)} ({ctx.profile} profile)")
    text = write_table(text_claims(table), output_path(ctx, "table1_text", "table"), prov)
    return [path, text]


# The introduction's cost claims (spec §1.2): TAP needs "circa 25% of the training time" and "half the memory"
# of RRR and RBR; ours = TAP's seconds per step (it/s of the other / it/s of TAP) and reserved memory as a
# fraction of each method's, per arch and mode; paper_table1 = the same ratio of the paper's printed Table 1.
TEXT_CLAIMS = {"tap_training_time_vs_rrr_rbr": ("it_s", "paper_it_s", True, 100.0),
               "tap_memory_vs_rrr_rbr": ("mem_reserved_gb", "paper_mem_gb", False, 1.0)}


def text_claims(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (claim, arch, mode, versus RRR or RBR): ours, the paper's Table 1 ratio and the text's number."""
    printed = read_published("tap", "text").set_index("quantity")
    rows = []
    for claim, (ours, paper_col, inverse, scale) in TEXT_CLAIMS.items():
        for (arch, mode), cell in table.set_index("method").groupby(["arch", "mode"]):
            for other in ("RRR", "RBR"):
                num, den = (other, "TAP") if inverse else ("TAP", other)
                paper_ratio = _ratio(cell.loc[num, paper_col], cell.loc[den, paper_col])
                if _is_number(paper_ratio):
                    paper_ratio = round(float(paper_ratio) * scale, 4)
                rows.append({"quantity": claim, "arch": arch, "mode": mode, "versus": other,
                             "ours": cell.loc[num, ours] / cell.loc[den, ours] * scale,
                             "paper_table1": paper_ratio,
                             "published": printed.loc[claim, "value"], "unit": printed.loc[claim, "unit"],
                             "printed": printed.loc[claim, "printed"],
                             "note": RBR_NOTE if other == "RBR" else ""})
    return pd.DataFrame(rows)


def _fmt(value: float, digits: int = 2) -> str:
    return "-" if pd.isna(value) else f"{value:.{digits}f}"


def print_table1(table: pd.DataFrame, title: str) -> None:
    """Per cell `ours | paper`; OOM marks an out-of-memory error or peak reserved memory above 10 GiB."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=title, caption=f"ours | paper (RTX 3080); H100 = the authors' code (issue anchors); RBR: {RBR_NOTE}")
    for col in ("arch", "method", "mode", "it/s", "GiB reserved", "it/s vs No XS", "mem vs No XS", "H100 it/s"):
        t.add_column(col, justify="left" if col in ("arch", "method", "mode") else "right")
    for _, r in table.iterrows():
        oom = " [red]OOM@10GB[/red]" if r["oom_10gb"] else ""
        t.add_row(r["arch"], r["method"], r["mode"],
                  f"{_fmt(r['it_s'])} | {r['paper_it_s']}", f"{_fmt(r['mem_reserved_gb'])}{oom} | {r['paper_mem_gb']}",
                  f"{_fmt(r['ratio_it_s_vs_noxs'], 3)} | {r['paper_ratio_it_s_vs_noxs']}",
                  f"{_fmt(r['ratio_mem_vs_noxs'], 3)} | {r['paper_ratio_mem_vs_noxs']}",
                  f"{_fmt(r['authors_code_h100_it_s'], 1)}")
    Console().print(t)
