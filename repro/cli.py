"""The `repro` command line: one sub-app per paper and one for the cross study (its artefacts plus `all`), and list,
status, bench, report, data."""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from repro.config import MAX_PACK, MAX_SEEDS, parse_overrides
from repro.errors import UserError, explain_and_log, require
from repro.papers import PAPER_NAMES, Paper, get_paper, load_all
from repro.report.intervals import use_interval


class Profile(str, Enum):
    paper = "paper"
    quick = "quick"
    smoke = "smoke"


class Init(str, Enum):
    imagenet = "imagenet"
    random = "random"


class Fidelity(str, Enum):
    code = "code"
    paper = "paper"


class Launcher(str, Enum):
    local = "local"
    slurm = "slurm"


class ReproGroup(TyperGroup):
    """The root command: every error a command raises becomes one paragraph on stderr and an exit status
    (`repro.errors.explain_and_log`: a bug's traceback goes to a log file); REPRO_DEBUG=1 shows the traceback
    instead."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as e:
            # click's own (usage errors, exits; typer may vendor click) print themselves
            if type(e).__module__.startswith(("click", "typer")) or os.environ.get("REPRO_DEBUG") == "1":
                raise
            from rich.console import Console
            from rich.markup import escape

            code, message = explain_and_log(e)
            Console(stderr=True).print(f"[bold red]error:[/bold red] {escape(message)}", highlight=False,
                                       soft_wrap=True)
            raise typer.Exit(code) from None


app = typer.Typer(cls=ReproGroup, help=__doc__, no_args_is_help=True, add_completion=False, rich_markup_mode="rich")


def _version(show: bool) -> None:
    if show:
        from importlib.metadata import version

        from repro.provenance import git_commit

        commit = git_commit()
        typer.echo(f"repro {version('repro')}" + (f" (commit {commit})" if commit != "unknown" else ""))
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version (and git commit) and exit.")] = False) -> None:
    """The `repro` command line: one sub-app per paper and one for the cross study (its artefacts plus `all`), and
    list, status, bench, report, data."""
data_app = typer.Typer(help="Datasets: check what is present under the data root, download and verify them, "
                            "prepare derived data.", no_args_is_help=True)
app.add_typer(data_app, name="data")

def _path(text: str | Path) -> Path:
    """A path option's value: an empty one is refused (it would silently mean the current directory)."""
    if isinstance(text, Path):  # a default
        return text
    if not text.strip():
        raise typer.BadParameter("an empty path is not a folder: pass a folder, or leave the option out for its "
                                 "default")
    return Path(text)


ProfileOpt = Annotated[Profile, typer.Option(help="paper = published settings; quick = minutes on a CPU; smoke = a "
                                                  "pipeline check (seconds to a minute per artefact on 2 CPU cores).")]
SeedsOpt = Annotated[Optional[int], typer.Option(min=1, max=MAX_SEEDS,
                                                 help="Number of seeds (0..N-1). Default: the paper's.")]
DeviceOpt = Annotated[str, typer.Option(help="auto (CUDA when present), cpu, cuda or cuda:<i>.")]
WorkersOpt = Annotated[int, typer.Option(min=1, max=1024, help="Runs trained concurrently (spread over all visible "
                                                               "GPUs).")]
DataRootOpt = Annotated[Optional[Path], typer.Option(envvar="REPRO_DATA", parser=_path, help="Root of the datasets.")]
RunsDirOpt = Annotated[Path, typer.Option(envvar="REPRO_RUNS", parser=_path, help="Run store.")]
OutOpt = Annotated[Optional[Path], typer.Option(parser=_path, help="Output root; default . (paper profile) or "
                                                                   "results/<profile>.")]
InitOpt = Annotated[Init, typer.Option(help="Pretrained models (TAP, MaskTune): imagenet weights (paper) or random "
                                              "init (no download; recorded, marks outputs not paper-faithful).")]
FidelityOpt = Annotated[Fidelity, typer.Option(help="Preset for all paper-vs-code switches.")]
SwitchOpt = Annotated[Optional[list[str]], typer.Option("--switch", help="Override one switch: NAME=VALUE or ID=VALUE (e.g. A-6=l2).")]


def artefact_command(paper_name: str, artefact_names: list[str], help_text: str):
    """A Typer command running `artefact_names` of one paper with the common options."""

    def command(
        profile: ProfileOpt = Profile.paper,
        seeds: SeedsOpt = None,
        device: DeviceOpt = "auto",
        workers: WorkersOpt = 1,
        data_root: DataRootOpt = None,
        runs_dir: RunsDirOpt = Path("runs"),
        out: OutOpt = None,
        dry_run: Annotated[bool, typer.Option("--dry-run", help="List the runs (done, partial, to do) and a time estimate.")] = False,
        download: Annotated[bool, typer.Option("--download", help="First fetch the datasets this reads (as `repro data "
                                                                  "download`) into --data-root, else $REPRO_DATA_HOME or "
                                                                  "~/.cache/repro/data; with --dry-run, say what and how large.")] = False,
        fidelity: FidelityOpt = Fidelity.code,
        switch: SwitchOpt = None,
        checkpoint_seconds: Annotated[float, typer.Option(min=0, help="Seconds between checkpoints of a run.")] = 60.0,
        init: InitOpt = Init.imagenet,
        ci: Annotated[str, typer.Option("--ci", callback=use_interval, help="95 % interval of each mean: t (Student) or bootstrap (seeded percentile bootstrap); named in the provenance.")] = "t",
        pack: Annotated[int, typer.Option(min=0, max=MAX_PACK, help="Runs of one architecture and recipe (seeds, lambdas, methods) "
                                                       "trained as one vectorised program, at most N per pack; "
                                                       "0 = 64 on CUDA, 1 on CPU.")] = 0,
        launcher: Annotated[Launcher, typer.Option(help="local: this machine; slurm: a submitit job array "
                                                        "(REPRO_SUBMITIT=local runs it with submitit's local executor).")] = Launcher.local,
        partition: Annotated[Optional[str], typer.Option(help="Slurm partition.")] = None,
        gpus_per_job: Annotated[int, typer.Option(min=0, help="Slurm: GPUs per array task.")] = 1,
        time: Annotated[int, typer.Option("--time", min=1, help="Slurm: minutes per task before requeue.")] = 240,
        array_parallelism: Annotated[int, typer.Option(min=1, help="Slurm: array tasks (at most; runs are claimed from the store).")] = 16,
        slurm_opt: Annotated[Optional[list[str]], typer.Option("--slurm-opt", help="Extra Slurm option KEY=VALUE (e.g. account=abc), repeatable.")] = None,
    ) -> None:
        from repro import pipeline
        from repro.runs.launch import LaunchOptions
        from repro.runs.slurm import SlurmOptions

        paper = get_paper(paper_name)
        launch = LaunchOptions(device=device, workers=workers, checkpoint_seconds=checkpoint_seconds,
                               profile=profile.value, pack=pack)
        slurm = None
        if launcher is Launcher.slurm:
            require("submitit")
            slurm = SlurmOptions(partition, gpus_per_job, time, array_parallelism,
                                 parse_overrides(slurm_opt, "--slurm-opt"))
        pipeline.artefact_command(paper, [paper.artefacts[n] for n in artefact_names], profile.value, seeds,
                                  fidelity.value, parse_overrides(switch), data_root, runs_dir, out, init.value, launch,
                                  slurm, dry_run, download)

    command.__doc__ = help_text
    return command


def paper_app(name: str) -> typer.Typer:
    paper = get_paper(name)
    sub = typer.Typer(help=paper.title, no_args_is_help=True)
    for art in paper.artefacts.values():
        sub.command(art.name, help=art.title)(artefact_command(name, [art.name], art.title))
    sub.command("all", help="Every artefact of this paper.")(
        artefact_command(name, list(paper.artefacts), f"Every artefact of {name}."))
    sub.command("switches", help="The paper-vs-code differences of this paper as switches: id, name, paper "
                                 "value, code value, default, admitted values and why.")(switches_command(paper))
    return sub


def switches_command(paper: Paper):
    """A Typer command listing `paper`'s switches (for `--switch` and `--fidelity`)."""

    def command() -> None:
        from repro.pipeline import show_switches

        show_switches(paper)

    return command


for _name in PAPER_NAMES:
    app.add_typer(paper_app(_name), name=_name)


ShownProfileOpt = Annotated[Optional[Profile], typer.Option(
    help="Show this profile only (default: every profile that has runs in the store).")]


@app.command("list")
def list_cmd(profile: ShownProfileOpt = None, seeds: SeedsOpt = None,
             fidelity: FidelityOpt = Fidelity.code, runs_dir: RunsDirOpt = Path("runs")) -> None:
    """Papers x artefacts with their run counts and state, per profile."""
    from repro.pipeline import show_list

    show_list(profile and profile.value, seeds, fidelity.value, runs_dir)


@app.command("status")
def status_cmd(profile: ShownProfileOpt = None, seeds: SeedsOpt = None,
               fidelity: FidelityOpt = Fidelity.code, runs_dir: RunsDirOpt = Path("runs")) -> None:
    """Per profile and artefact: runs done, running, failed, partial and pending, with each failure's last error
    line."""
    from repro.pipeline import show_status

    show_status(profile and profile.value, seeds, fidelity.value, runs_dir)


@app.command("bench")
def bench_cmd(
    profile: ProfileOpt = Profile.paper,
    device: DeviceOpt = "auto",
    out: OutOpt = None,
    only: Annotated[Optional[str], typer.Option(help="Only the grids whose name contains this (e.g. tap).")] = None,
) -> None:
    """One-by-one vs packed training throughput of each paper's training step, side by side on this device,
    with each artefact grid's projected time: writes benchmarks/<device>.csv."""
    from repro.bench import run_bench
    from repro.pipeline import output_root
    from repro.seeding import resolve_device

    load_all()  # the bench builds models and penalties by name
    dev = resolve_device(device)
    typer.echo(f"wrote {run_bench(profile.value, dev, output_root(profile.value, out), only)}")


@app.command("report")
def report_cmd(
    paper: Annotated[str, typer.Argument(help="A paper (actdiff, tap, cfaug, masktune) or all.")],
    profile: Annotated[Optional[Profile], typer.Option(
        help="Sets the default --out as artefact commands do, and the profile of the commands suggested for "
             "missing artefacts (default: the one the outputs record).")] = None,
    out: OutOpt = None,
    runs_dir: RunsDirOpt = Path("runs"),
    data_root: DataRootOpt = None,
) -> None:
    """Write reports/<paper>.md and a self-contained .html under --out: each artefact's tables beside the
    paper's, figures, claims and provenance, and why an artefact has no results yet. Trains nothing."""
    from repro.report.paper_report import default_out, write_reports

    if paper != "all" and paper not in PAPER_NAMES:
        raise UserError(f"unknown paper {paper!r}: `repro report` takes one of {', '.join(PAPER_NAMES)}, or all")
    names = list(PAPER_NAMES) if paper == "all" else [paper]
    load_all()  # planning may read a finished run (TAP's teacher saliency)
    out = out or default_out(profile.value if profile else "paper")
    for path in write_reports(names, out, runs_dir, profile and profile.value, data_root):
        typer.echo(f"wrote {path}")


@data_app.command("check")
def data_check(data_root: DataRootOpt = None) -> None:
    """Every dataset of the four papers: found, subset, missing or corrupt, with counts and how to obtain it."""
    from rich.console import Console

    from repro.data.check import check_all, render

    render(check_all(data_root), Console())


@data_app.command("download")
def data_download(
    what: Annotated[str, typer.Argument(help="A dataset or weight file (see --list), a paper, or all.")] = "all",
    data_root: DataRootOpt = None,
    list_entries: Annotated[bool, typer.Option("--list", help="List every entry: size, access kind, state.")] = False,
    print_urls: Annotated[bool, typer.Option("--print-urls", help="Print URL, checksum and target of every file "
                                                                  "(to fetch elsewhere); downloads nothing.")] = False,
    large: Annotated[bool, typer.Option("--large", help="Also fetch entries above 20 GB.")] = False,
) -> None:
    """Fetch datasets and pretrained weights from pinned sources (env REPRO_DOWNLOAD_MIRROR: other base URLs),
    verify them and lay them out as `repro data check` expects; then say what it finds."""
    from rich.console import Console

    from repro.data.download import run

    if list_entries:
        run.list_entries(data_root, Console())
    elif print_urls:
        run.print_urls(what, data_root, Console())
    else:
        run.download([what], data_root, large, Console())


@data_app.command("verify")
def data_verify(what: Annotated[str, typer.Argument(help="A dataset or weight file, a paper, or all.")] = "all",
                data_root: DataRootOpt = None) -> None:
    """Checksums and file counts of the downloaded files that are present (read-only)."""
    from rich.console import Console

    from repro.data.download.run import verify

    verify(what, data_root, Console())


@data_app.command("prepare")
def data_prepare(paper: Annotated[str, typer.Argument(
                     help="Paper whose derived data to build (actdiff, tap, masktune, cfaug).")],
                 data_root: DataRootOpt = None, runs_dir: RunsDirOpt = Path("runs")) -> None:
    """Build a paper's derived (contaminated) data from the raw files under --data-root into
    <runs-dir>/prepared/, without touching the raw files (actdiff: the X-ray SPC splits as tensors; tap: decoy
    MNIST, PNEU and KNEE with text tags; masktune, cfaug: check each present dataset and record its location and
    fingerprint)."""
    from repro.pipeline import prepare_data

    typer.echo(f"prepared data under {prepare_data(paper, data_root, runs_dir)}")


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
