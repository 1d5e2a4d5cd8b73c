"""What the commands do: an artefact command plans -> trains what is missing -> builds the artefacts, or, with
--dry-run, only reads, plans and estimates (nothing is written: no prepared data, no run folders, no locks, no
outputs); `repro list` and `repro status` show the state of every artefact's runs; `repro data prepare`.

Run counts are distinct runs (run keys): plan rows that share a config (e.g. actdiff's UNet Classify and Conv AE
Classify, A-3) share one run, so a plan of 220 rows x seeds may be 210 runs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from rich.console import Console

from repro.data.image_sets import DatasetError
from repro.errors import BAD_INPUT, RunFailed, UserError, cause, explain
from repro.config import PROFILES
from repro.papers import (NOT_PREPARED, PAPER_NAMES, Artefact, Context, NotPrepared, Paper, PlannedRun, distinct_runs,
                          get_paper, load_all)


def output_root(profile: str, out: Path | None) -> Path:
    """--out, else where a profile's outputs go by default: `.` for the paper profile, `results/<profile>`."""
    return out or (Path(".") if profile == "paper" else Path("results") / profile)


def artefact_command(paper: Paper, artefacts: list[Artefact], profile: str, seeds: int | None, fidelity: str,
                     switches: dict[str, str], data_root: Path | None, runs_dir: Path, out: Path | None, init: str,
                     launch: Any, slurm: Any = None, dry_run: bool = False, download: bool = False) -> None:
    """`repro <paper> <artefact>`: fetch the data first with `download`, then `run` the artefacts (`launch`: a
    LaunchOptions; `slurm`: SlurmOptions for the cluster launcher, else local), or only plan and estimate them
    with `dry_run`."""
    from repro.seeding import resolve_device

    if download:
        from repro.data.download.ensure import for_artefacts

        data_root, present = for_artefacts(sorted({d for a in artefacts for d in a.datasets}), data_root, dry_run)
        if not present:
            import typer

            typer.echo("the runs are planned once the data is present: run the command without --dry-run")
            return
    if slurm is None:
        resolve_device(launch.device)  # a bad --device fails before any work (a cluster node has its own devices)
    ctx = paper.context(profile, seeds, fidelity, switches, output_root(profile, out), data_root, runs_dir, init,
                        launch.device, dry_run)
    if dry_run:
        dry_run_plan(artefacts, ctx)
    else:
        run(artefacts, ctx, launch, slurm)


def run(artefacts: list[Artefact], ctx: Context, launch: Any, slurm: Any = None) -> None:
    """Plan the runs of `artefacts`, train what is missing (`launch`: a LaunchOptions; `slurm`: SlurmOptions
    for the cluster launcher, else local), then build each artefact."""
    from repro.runs.store import RunStore, check_folder

    load_all()  # training and building look models, datasets and penalties up by name
    console = Console()
    store = RunStore(ctx.runs_dir)
    store.check_writable()
    check_folder(ctx.out, "--out", write=True)
    artefacts = [a for a in artefacts if ready(console, a, ctx, skip_missing=len(artefacts) > 1)]
    # Plans may depend on finished runs (e.g. a lambda chosen by a sweep): re-plan until nothing is missing.
    while True:
        planned = {r.config.key: r for a in artefacts for r in a.plan(ctx)}
        labels = {k: r.label for k, r in planned.items()}
        records = [store.record(r.config) for r in planned.values()]
        for rec in records:
            store.init(rec)
        if not train_missing(store, records, labels, launch, slurm):
            break
    for a in artefacts:
        for path in a.build(ctx, a.plan(ctx), store):
            console.print(f"wrote {path}")


def dry_run_plan(artefacts: list[Artefact], ctx: Context) -> None:
    """List the runs of `artefacts` (done, partial, to do; later stages planned with stand-ins) and estimate
    the time still needed, writing nothing (`ctx.dry_run`)."""
    from repro.runs.store import RunStore

    assert ctx.dry_run, "a dry-run needs a dry-run context"
    console = Console()
    artefacts = [a for a in artefacts if ready(console, a, ctx, skip_missing=len(artefacts) > 1)]
    rows = [r for a in artefacts for r in a.plan(ctx)]
    runs = distinct_runs(rows)
    store = RunStore(ctx.runs_dir)
    show_plan(console, ctx, len(rows), runs, [store.record(r.config) for r in runs])


def ready(console: Console, artefact: Artefact, ctx: Context, skip_missing: bool) -> bool:
    """Prepare the artefact's derived data (a dry-run: check the raw data only) and check that it can be planned.
    With `skip_missing` (several artefacts, e.g. `all`), one whose data is missing is skipped with its message
    instead of stopping the rest; in a dry-run, one whose plan needs data not prepared yet is listed as such."""
    try:
        if artefact.prepare:
            artefact.prepare(ctx)
        artefact.plan(ctx)
    except (FileNotFoundError, ValueError) as e:
        if ctx.dry_run and isinstance(e, NotPrepared):
            console.print(f"[yellow]{artefact.name}: data not prepared[/yellow] ({e}); its runs are counted once "
                          f"`repro data prepare {ctx.paper} --data-root DIR --runs-dir {ctx.runs_dir}` has run",
                          highlight=False, soft_wrap=True)
            return False
        missing = isinstance(e, (FileNotFoundError, DatasetError)) and artefact.datasets
        why = str(e).strip(chr(39) + chr(34))
        if missing:
            why = f"{why.rstrip('.')}. {fetch_hint(artefact, ctx)}"
        if not skip_missing:
            if missing:
                raise UserError(why) from e
            raise
        console.print(f"[yellow]skipping {artefact.name}:[/yellow] {why}", highlight=False)
        return False
    return True


def fetch_hint(artefact: Artefact, ctx: Context) -> str:
    """The command that fetches what `artefact` reads (`repro data download` or the artefact's own --download)."""
    root = f" --data-root {ctx.data_root}" if ctx.data_root else ""
    return (f"`repro data download {' '.join(artefact.datasets)}{root}` fetches the data it reads (or says how to "
            f"get it by hand), or add --download to this command")


def train_missing(store, records, labels: dict[str, str], launch: Any, slurm: Any = None) -> bool:
    """Train the records not done yet, here or as a cluster job array; returns whether there were any."""
    import typer

    from repro.runs.launch import execute, todo
    from repro.runs.progress import RunProgress
    from repro.runs.store import FAILED

    missing = todo(records)
    if not missing:
        return False
    if slurm is not None:
        from repro.runs.slurm import run as run_slurm

        typer.echo(f"submitting {len(missing)} runs as a job array (runs dir {store.root})")
        run_slurm(store, records, launch, slurm)
        return True
    try:
        with RunProgress(len(missing), labels) as progress:
            execute(store, records, launch, progress)
    except Exception as e:
        if explain(e)[0] == BAD_INPUT:  # e.g. a dataset file found broken only when a run reads it
            raise
        failed = [r for r in missing if r.state() == FAILED]
        raise RunFailed(f"{len(failed) or 'a'} run(s) failed ({cause(e)}): "
                        + "; ".join(f"{labels[r.key]} in {r.dir}" for r in failed[:3])
                        + ". Each failed run's traceback is in the `failed` file of its folder; finished runs are "
                        "kept, and running the command again retries the failed runs and resumes the rest.") from e
    return True


def show_plan(console: Console, ctx: Context, rows: int, runs: list[PlannedRun], records: list) -> None:
    """The runs of a plan with their state, its stages, and the time still needed with the source of each part."""
    from rich.table import Table

    t = Table(title=f"{len(runs)} runs")
    for col in ("state", "run", "key", "epochs done"):
        t.add_column(col)
    states = [rec.state() for rec in records]
    for run, rec, state in zip(runs, records, states):
        planned = rec.result()["epochs"] if state == "done" else rec.config.epochs  # a finetune's rounds differ
        t.add_row(state, run.label, rec.key, f"{len(rec.metrics())}/{planned}")
    console.print(t)

    def say(text: str) -> None:
        console.print(text, highlight=False, soft_wrap=True)

    if rows != len(runs):
        say(f"{rows} planned rows x seeds, {len(runs)} distinct runs (rows with the same config share one run)")
    stages = Counter(run.after for run in runs)
    if any(stages.keys()):
        later = "; ".join(f"stage {i} (after {after}): {n} runs, counted with a stand-in until then"
                          for i, (after, n) in enumerate(((a, n) for a, n in stages.items() if a), start=2))
        say(f"stage 1 (planned now): {stages['']} runs; {later}")
    unprepared = sum(run.config.data.get("fingerprint") == NOT_PREPARED for run in runs)
    if unprepared:
        say(f"data not prepared: {unprepared} runs planned from the raw data under {ctx.data_root}; their keys are "
            f"final once `repro data prepare {ctx.paper} --data-root {ctx.data_root} --runs-dir {ctx.runs_dir}` has run")
    summary = ", ".join(f"{n} {s}" for s, n in sorted(Counter(states).items())) or "no runs"
    say(f"{summary}; {estimate_line(ctx, runs, records, states)}")


def estimate_line(ctx: Context, runs: list[PlannedRun], records: list, states: list[str]) -> str:
    """The time still needed, one run at a time, with the source of each part and how to measure the rest."""
    from repro.provenance import device_kind, device_name
    from repro.runs.estimate import estimate
    from repro.runs.launch import todo
    from repro.seeding import resolve_device

    device = device_kind(device_name(resolve_device(ctx.device)))
    waiting = {r.key for r in todo(records)}
    pairs = list(zip(runs, records))
    parts = estimate([p for p in pairs if p[1].key in waiting], [p for p, s in zip(pairs, states) if s == "done"],
                     device, ctx.out)
    minutes = sum(p.seconds for p in parts if p.seconds is not None) / 60
    unmeasured = any(p.seconds is None for p in parts)
    line = (f"estimated time for the rest on {device}, one run at a time: {minutes:.1f} min"
            + (" for the measured runs" if unmeasured else ""))
    if parts:
        line += " (" + "; ".join(map(str, parts)) + ")"
    if unmeasured:
        line += (f". Measure them with `repro bench --profile {ctx.profile} --out {ctx.out}` (speeds of the bench's "
                 f"cases, under {ctx.out}/benchmarks/), or train one run of a kind: its done runs time the rest")
    return line


def show_switches(paper: Paper) -> None:
    """`repro <paper> switches`: the paper's switches (for `--switch` and `--fidelity`) as a table."""
    from rich.table import Table

    t = Table(title=f"{paper.name}: paper-vs-code differences (--switch ID=VALUE or NAME=VALUE; "
                    "--fidelity paper sets every one to its paper value)")
    for col in ("id", "name", "paper", "code", "default", "takes", "why"):
        t.add_column(col, overflow="fold")
    for s in paper.switches:
        t.add_row(s.id, s.name, str(s.paper), str(s.code), str(s.default), s.describe_allowed(), s.doc)
    Console().print(t)


def prepare_data(name: str, data_root: Path | None, runs_dir: Path) -> Path:
    """`repro data prepare <paper>`: build the paper's derived data under `runs_dir`/prepared; returns that folder."""
    paper = get_paper(name)
    if paper.prepare is None:
        raise UserError(f"{name} has no derived data to prepare (yet)")
    paper.prepare(paper.context("paper", None, "code", {}, Path("."), data_root, runs_dir))
    return runs_dir / "prepared"


def artefact_states(profile: str, seeds: int | None, fidelity: str, runs_dir: Path) -> Iterator[tuple]:
    """(paper, artefact, records or None, state note) for every artefact under one profile; the note says why
    there are no records (data not prepared, or an artefact that trains nothing)."""
    from repro.runs.store import RunStore, check_folder

    check_folder(runs_dir, "--runs-dir")
    load_all()  # a plan may read a finished run (TAP's teacher masks)
    store = RunStore(runs_dir)
    for name in PAPER_NAMES:
        paper = get_paper(name)
        ctx = paper.context(profile, seeds, fidelity, {}, Path("."), None, runs_dir)
        for art in paper.artefacts.values():
            try:
                records = [store.record(r.config) for r in distinct_runs(art.plan(ctx))]  # one per run key
            except (FileNotFoundError, ValueError):  # derived data not prepared yet, or too small to plan
                yield name, art, None, "data not prepared or incomplete"
                continue
            yield name, art, records, "" if records else "no training runs"


def states_by_profile(profile: str | None, seeds: int | None, fidelity: str, runs_dir: Path
                      ) -> tuple[str, list[tuple[str, list[tuple]]]]:
    """The title part and, per profile shown, the rows of `artefact_states`: the asked profile, or every profile
    that has runs in the store (the paper profile when none has)."""
    if profile is not None:
        return f"{profile} profile", [(profile, list(artefact_states(profile, seeds, fidelity, runs_dir)))]
    rows = [(p, list(artefact_states(p, seeds, fidelity, runs_dir))) for p in PROFILES]
    started = [(p, r) for p, r in rows if any(rec.state() != "pending" for *_, recs, _ in r for rec in recs or ())]
    if not started:
        return "paper profile; no profile has runs yet", rows[:1]
    return f"profiles with runs: {', '.join(p for p, _ in started)}", started


def show_list(profile: str | None, seeds: int | None, fidelity: str, runs_dir: Path) -> None:
    """`repro list`: papers x artefacts with their run counts and state, per profile."""
    from rich.table import Table

    shown, groups = states_by_profile(profile, seeds, fidelity, runs_dir)
    t = Table(title=f"artefacts ({shown}; runs in {runs_dir})")
    several = len(groups) > 1  # a profile column only then: the title names a single one
    for col in ("profile",) * several + ("paper", "artefact", "kind", "runs", "done", "state"):
        t.add_column(col)
    for prof, rows in groups:
        for name, art, records, note in rows:
            first = (prof,) * several + (name, art.name, art.kind)
            if not records:
                t.add_row(*first, "-", "-", note)
                continue
            done = sum(r.state() == "done" for r in records)
            state = "complete" if done == len(records) else "partial" if done else "to do"
            t.add_row(*first, str(len(records)), str(done), state)
    Console().print(t)


def show_status(profile: str | None, seeds: int | None, fidelity: str, runs_dir: Path) -> None:
    """`repro status`: per profile and artefact, runs done, damaged, running, failed, partial and pending; the
    cluster jobs; each failure's last error line and each damaged run."""
    from rich.table import Table

    from repro.runs.slurm import job_states

    console = Console()
    shown, groups = states_by_profile(profile, seeds, fidelity, runs_dir)
    t = Table(title=f"run status ({shown}; runs in {runs_dir})")
    columns = ("done", "damaged", "running", "failed", "partial", "pending")
    several = len(groups) > 1  # a profile column only then: the title names a single one
    for col in ("profile",) * several + ("paper", "artefact", *columns):
        t.add_column(col)
    failures, damaged = {}, {}
    for prof, rows in groups:
        for name, art, records, _ in rows:
            if not records:
                continue
            states = [r.state() for r in records]
            t.add_row(*(prof,) * several, name, art.name, *(str(states.count(s)) for s in columns))
            failures |= {r.key: (name, r) for r, s in zip(records, states) if s == "failed"}
            damaged |= {r.key: (name, r) for r, s in zip(records, states) if s == "damaged"}
    console.print(t)
    for job in job_states(runs_dir):
        console.print(f"cluster job {job['job_id']} ({job['executor']}, submitted {job['submitted']}, "
                      f"{job['runs']} runs): {job['state']}", highlight=False)
    for key, (name, r) in failures.items():
        console.print(f"[red]failed[/red] {name} {_run_name(r)} ({key}): {r.failure()}", highlight=False,
                      soft_wrap=True)
    for key, (name, r) in damaged.items():
        console.print(f"[yellow]damaged[/yellow] {name} {_run_name(r)} ({key}): {r.damage()}; the artefact command "
                      "retrains it", highlight=False, soft_wrap=True)


def _run_name(record: Any) -> str:
    return f"{record.config.model} {record.config.method} seed {record.config.seed}"
