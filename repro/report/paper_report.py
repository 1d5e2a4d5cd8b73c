"""`repro report`: per paper, `reports/<paper>.md` and one self-contained `reports/<paper>.html` with every
artefact's reproduced tables beside the paper's, its figures, claims and provenance, and why an artefact has no
results yet. Built only from the output folders and the run store: it plans runs (cheap), it never trains."""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from repro.config import resolve_switches
from repro.papers import Artefact, Context, Paper, get_paper
from repro.report.claims import VERDICTS
from repro.report.figures import profile_label
from repro.report.tables import ALPHA, STAT_SUFFIXES
from repro.runs.store import RunStore, atomic_write_text

MAX_ROWS = 60  # rows of a table of another shape shown before pointing at its CSV


# --- a small document model, rendered to Markdown and to HTML -----------------------------------------------------

@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Text:
    """A paragraph; inline `code` and [label](href) links."""

    text: str


@dataclass(frozen=True)
class Bullets:
    items: list[str]


@dataclass(frozen=True)
class Grid:
    header: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Image:
    path: Path
    href: str  # relative to the reports folder


Block = Heading | Text | Bullets | Grid | Image


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: list[Block]) -> str:
    """GitHub-flavoured Markdown; figures linked relatively."""
    parts = []
    for b in blocks:
        if isinstance(b, Heading):
            parts.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Text):
            parts.append(b.text)
        elif isinstance(b, Bullets):
            parts.append("\n".join(f"- {item}" for item in b.items))
        elif isinstance(b, Grid):
            lines = [b.header, ["---"] * len(b.header), *b.rows]
            parts.append("\n".join("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in lines))
        else:
            parts.append(f"![{b.path.name}]({b.href})")
    return "\n\n".join(parts) + "\n"


def _inline_html(text: str) -> str:
    out = html.escape(text, quote=False)
    out = re.sub(r"\[([^\]]+)\]\(([^)\s]+)\)", r'<a href="\2">\1</a>', out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", out)


def _html_block(b: Block) -> str:
    if isinstance(b, Heading):
        return f"<h{b.level}>{_inline_html(b.text)}</h{b.level}>"
    if isinstance(b, Text):
        return f"<p>{_inline_html(b.text)}</p>"
    if isinstance(b, Bullets):
        return "<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in b.items) + "</ul>"
    if isinstance(b, Grid):
        head = "".join(f"<th>{_inline_html(c)}</th>" for c in b.header)
        body = "".join("<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in row) + "</tr>" for row in b.rows)
        return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    data = base64.b64encode(b.path.read_bytes()).decode()
    return f'<figure><img alt="{html.escape(b.path.name)}" src="data:image/png;base64,{data}"></figure>'


CSS = ("body{font-family:sans-serif;max-width:80em;margin:2em auto;padding:0 1em}"
       ".scroll{overflow-x:auto;max-width:100%}"  # a wide table scrolls inside the page instead of running off it
       "table{border-collapse:collapse;margin:1em 0;font-size:90%}td,th{border:1px solid #ccc;padding:2px 6px}"
       "img{max-width:100%}code{background:#f4f4f4}")


def to_html(blocks: list[Block], title: str) -> str:
    """One self-contained page: figures inlined as base64 PNGs, CSV files linked relatively."""
    body = "\n".join(_html_block(b) for b in blocks)
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{CSS}</style></head>\n<body>\n{body}\n</body></html>\n")


# --- what the output folders and the run store hold ----------------------------------------------------------------

def default_out(profile: str) -> Path:
    """Where artefact commands write by default: `.` for the paper profile, `results/<profile>` otherwise."""
    return Path(".") if profile == "paper" else Path("results") / profile


def owner(stem: str, names: list[str]) -> str | None:
    """The artefact a file belongs to: its name, or the longest artefact name followed by `_` (`table1_text`)."""
    hits = [n for n in names if stem == n or stem.startswith(n + "_")]
    return max(hits, key=len, default=None)


def paper_files(out: Path, paper: Paper) -> dict[str | None, list[Path]]:
    """Files under OUT/tables/<paper>/ and OUT/figures/<paper>/ by artefact (None: no artefact's name)."""
    names = list(paper.artefacts)
    files: dict[str | None, list[Path]] = {}
    for folder in ("tables", "figures"):
        for path in sorted((out / folder / paper.name).glob("*")):
            if path.is_file() and not path.name.startswith("."):
                files.setdefault(owner(path.stem, names), []).append(path)
    return files


def read_sidecar(path: Path) -> dict[str, Any]:
    """A provenance sidecar, or {} when absent or unreadable."""
    try:
        return json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError):
        return {}


def read_csv(path: Path) -> pd.DataFrame:
    """A CSV exactly as written (strings, empty cells kept empty)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def claims_text(counts: Counter) -> str:
    """The verdicts that occur, with their counts, best first."""
    return ", ".join(f"{counts[v]} {v}" for v in VERDICTS if counts[v])


@dataclass
class Summary:
    """Counts for the top of a report and the index."""

    artefacts: int = 0
    with_results: int = 0
    claims: Counter = field(default_factory=Counter)
    within: int = 0
    cells: int = 0
    uncounted: Counter = field(default_factory=Counter)  # compared cells not counted, by profile (not the paper's)
    tests: Counter = field(default_factory=Counter)  # cells by Welch verdict: consistent, inconsistent, not tested
    rows: list[list[str]] = field(default_factory=list)  # per artefact: name, kind, results, claims

    def add(self, other: Summary) -> None:
        self.artefacts += other.artefacts
        self.with_results += other.with_results
        self.claims += other.claims
        self.within += other.within
        self.cells += other.cells
        self.uncounted += other.uncounted
        self.tests += other.tests
        self.rows += other.rows

    def line(self) -> str:
        n = sum(self.claims.values())
        held = f"{n} claims checked: {claims_text(self.claims)}" if n else "no claims checked"
        tol = f"; {self.within} of {self.cells} compared cells within tolerance" if self.cells else ""
        tol += "".join(f"; {n} cells at profile `{p}` not counted against the tolerance (not comparable with the "
                       "paper)" for p, n in sorted(self.uncounted.items()))
        tested = (f"; against the paper's mean, std and n (Welch, alpha {ALPHA}): {self.tests['consistent']} "
                  f"consistent, {self.tests['inconsistent']} inconsistent, {self.tests['not tested']} not tested"
                  if self.tests else "")
        return f"**{self.with_results} of {self.artefacts} artefacts have results**; {held}{tol}{tested}."


@dataclass(frozen=True)
class Setting:
    """What one report reads: the output root, run store, profile (for plans and commands) and data root."""

    out: Path
    runs_dir: Path
    profile: str
    data_root: Path | None

    def context(self, paper: Paper) -> Context:
        return paper.context(self.profile, None, "code", {}, self.out, self.data_root, self.runs_dir)

    def command(self, paper: str, artefact: str) -> str:
        """The artefact command that makes the outputs this report reads."""
        cmd = f"repro {paper} {artefact} --profile {self.profile}"
        if self.out != default_out(self.profile):
            cmd += f" --out {self.out}"
        if self.runs_dir != Path("runs"):
            cmd += f" --runs-dir {self.runs_dir}"
        return cmd + (f" --data-root {self.data_root}" if self.data_root else "")


def recorded_profile(files: dict[str | None, list[Path]], out: Path) -> str:
    """The profile most of the outputs record; else the one whose default output root is `out`; else paper."""
    profiles = Counter(read_sidecar(p).get("profile") for ps in files.values() for p in ps if p.suffix == ".json")
    profiles.pop(None, None)
    if profiles:
        return profiles.most_common(1)[0][0]
    return next((p for p in ("quick", "smoke") if default_out(p) == out), "paper")


def why_missing(paper: Paper, art: Artefact, setting: Setting) -> str:
    """Why an artefact has no outputs: its data missing or not prepared, or not run (how far)."""
    try:
        runs = art.plan(setting.context(paper))
    except (FileNotFoundError, ValueError) as e:
        return (f"data missing or not prepared: {str(e).strip(chr(39) + chr(34))} "
                "(`repro data check --data-root DIR` lists what is present)")
    command = f"make it with `{setting.command(paper.name, art.name)}`"
    if not runs:
        return f"not run (it trains nothing): {command}"
    store = RunStore(setting.runs_dir)
    done = sum(store.record(r.config).state() == "done" for r in runs)
    if done == len(runs):
        return f"runs done, not built: its {done} runs are done in `{setting.runs_dir}`; {command} (trains nothing)"
    return f"not run: {done} of {len(runs)} runs done in `{setting.runs_dir}`; {command}"


# --- one artefact's section --------------------------------------------------------------------------------------

def stat_values(columns: list[str]) -> list[str]:
    """The values `v` a table carries every `v_<stat>` column of (mean, std, n, published, ... within_tol)."""
    bases = [c.removesuffix("_within_tol") for c in columns if c.endswith("_within_tol")]
    return [v for v in bases if all(f"{v}_{s}" in columns for s in STAT_SUFFIXES)]


def _ours(row: pd.Series, v: str) -> str:
    mean, std, n = row[f"{v}_mean"], row[f"{v}_std"], row[f"{v}_n"]
    if not mean:
        return "-"
    low, high = row[f"{v}_ci_low"], row[f"{v}_ci_high"]
    count = f" ({n}, no CI)" if n == "1" else f" ({n})" if n else ""
    return mean + (f" ± {std}" if std else "") + count + (f" [{low}, {high}]" if low else "")


def _paper(row: pd.Series, v: str) -> str:
    pub, std = row[f"{v}_published"], row[f"{v}_published_std"]
    return (pub or "-") + (f" ± {std}" if std else "")


def _versus(row: pd.Series, v: str) -> str:
    """The Welch test against the paper's value: its verdict and p, or why it was not tested."""
    test, p = row[f"{v}_published_test"], row[f"{v}_p_published"]
    if test in ("consistent", "inconsistent"):
        return f"{'**inconsistent**' if test == 'inconsistent' else test}, p {p}"
    return test or "-"


TOL_TEXT = {"True": "yes", "False": "**no**", "": "-"}


def _tolerance(flag: str, profile: str) -> str:
    """A within-tolerance flag as the report shows it: only at the paper's profile."""
    if profile != "paper" and flag in ("True", "False"):
        return f"not counted ({profile})"
    return TOL_TEXT.get(flag, flag)


def stats_grid(table: pd.DataFrame, values: list[str], profile: str) -> Grid:
    """Per value: ours mean ± std (n) [95 % CI] | paper | diff | within tol | Welch test, after the key columns.
    Away from the paper's profile the tolerance column says it is not counted."""
    stats = {f"{v}_{s}" for v in values for s in STAT_SUFFIXES}
    keys = [c for c in table.columns if c not in stats]
    parts = ("ours mean ± std (n) [95 % CI]", "paper", "diff", "within tol", "vs paper (Welch)")
    header = keys + [f"{v} {part}" for v in values for part in parts]
    rows = [[row[k] for k in keys]
            + [cell for v in values for cell in (_ours(row, v), _paper(row, v), row[f"{v}_diff"] or "-",
                                                 _tolerance(row[f"{v}_within_tol"], profile), _versus(row, v))]
            for _, row in table.iterrows()]
    return Grid(header, rows)


def raw_grid(table: pd.DataFrame) -> Grid:
    return Grid(list(table.columns), [list(r) for r in table.head(MAX_ROWS).itertuples(index=False)])


def link(path: Path, reports: Path) -> str:
    return f"[`{path.name}`]({Path(os.path.relpath(path, reports)).as_posix()})"


def table_blocks(table: pd.DataFrame, path: Path, reports: Path, summary: Summary, profile: str) -> list[Block]:
    """A table compared with the paper (its stat columns), else its raw columns, captioned with its profile; counts
    cells within tolerance at the paper's profile only (elsewhere they are counted as not comparable)."""
    values = stat_values(list(table.columns))
    what = f"({profile_label(profile)})"
    if values:
        tol = [table[f"{v}_within_tol"] for v in values]
        compared = sum(int(t.isin(["True", "False"]).sum()) for t in tol)
        if profile == "paper":
            summary.within += sum(int((t == "True").sum()) for t in tol)
            summary.cells += compared
        elif compared:
            summary.uncounted[profile] += compared
        for v in values:
            summary.tests.update(t.split(" (")[0].split(":")[0] for t in table[f"{v}_published_test"] if t)
        return [Text(f"{link(path, reports)} beside the paper's numbers {what}:"), stats_grid(table, values, profile)]
    more = f" (first {MAX_ROWS} of {len(table)} rows)" if len(table) > MAX_ROWS else ""
    return [Text(f"{link(path, reports)}{more} {what}:"), raw_grid(table)]


def claims_blocks(claims: pd.DataFrame, summary: Summary, profile: str) -> list[Block]:
    """The claims with their verdict, effect and p, the paper's sentence, the rule and the numbers read."""
    summary.claims.update(claims["result"])
    columns = [c for c in ("claim", "result", "effect", "p", "sentence", "rule", "numbers", "note") if c in claims]
    return [Text(f"Claims ({profile_label(profile)}): {claims_text(Counter(claims['result']))}."),
            Grid(columns, claims[columns].values.tolist())]


def file_profile(path: Path, default: str) -> str:
    """The profile a file's sidecar records (a claims file: its table's), else `default`."""
    sidecar = read_sidecar(path) or read_sidecar(path.with_name(path.stem.removesuffix("_claims") + path.suffix))
    return sidecar.get("profile") or default


def csv_blocks(path: Path, reports: Path, summary: Summary, profile: str) -> list[Block]:
    """A claims file (`<name>_claims.csv`) or a table; an unreadable one is named, not fatal."""
    try:
        table = read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as e:
        return [Text(f"{link(path, reports)}: unreadable ({e}).")]
    if path.stem.endswith("_claims") and {"claim", "result", "note"} <= set(table.columns):
        return claims_blocks(table, summary, profile)
    return table_blocks(table, path, reports, summary, profile)


def provenance_items(prov: dict[str, Any], paper: Paper) -> list[str]:
    """Profile, seeds, fidelity, runs, commit, devices, date, switches off their preset, and the build's note."""
    if not prov:
        return ["no provenance sidecar"]
    seeds = ", ".join(map(str, prov.get("seeds", [])))
    commit = prov.get("commit", "unknown")
    devices = prov.get("run_devices") or [prov.get("device", "-")]
    init = f", init `{prov['init']}`" if "init" in prov else ""  # only models that can start pretrained have one
    items = [f"**{profile_label(prov.get('profile'))}**" + (f", seeds {seeds}" if seeds else "")
             + f", fidelity `{prov.get('fidelity')}`{init}",
             f"commit `{commit[:12] + commit[40:]}`, built {prov.get('date', '?')}, device: {', '.join(devices)}"]
    used, missing = prov.get("run_keys", []), prov.get("missing_runs", [])
    if used or missing:
        items.append(f"{len(used)} runs used" + (f", **{len(missing)} missing (partial results)**"
                                                 if missing else ", none missing"))
    preset = resolve_switches(paper.switches, prov.get("fidelity", "code"), {})
    ids = {s.name: s.id for s in paper.switches}
    off = [f"{ids[k]} `{k}={v}` (preset {preset[k]})" for k, v in prov.get("switches", {}).items()
           if k in preset and v != preset[k]]
    items.append("switches off the preset: " + (", ".join(off) if off else "none"))
    if prov.get("synthetic_data"):
        items.append(f"synthetic data: {prov['synthetic_data']}")
    items += [f"{name}: {method}" for name, method in prov.get("statistics", {}).items()]
    return items + ([f"note: {prov['note']}"] if prov.get("note") else [])


def files_blocks(files: list[Path], reports: Path, summary: Summary, profile: str) -> list[Block]:
    """Tables (compared or raw), figures, claims, each captioned with its profile (its sidecar's, else `profile`),
    then links to every file (arrays, sidecars)."""
    blocks: list[Block] = []
    for path in sorted(files, key=lambda p: p.stem.endswith("_claims")):
        if path.suffix == ".csv":
            blocks += csv_blocks(path, reports, summary, file_profile(path, profile))
        elif path.suffix == ".png":
            blocks += [Text(f"{link(path, reports)} ({profile_label(file_profile(path, profile))}):"),
                       Image(path, Path(os.path.relpath(path, reports)).as_posix())]
    return blocks + [Text("Files: " + ", ".join(link(p, reports) for p in files))]


def main_file(files: list[Path], name: str) -> Path:
    """The file whose sidecar describes the build: the artefact's own table or figure, else its first file."""
    own = [p for p in files if p.stem == name and p.suffix in (".csv", ".png")]
    return (own or files)[0]


def artefact_blocks(paper: Paper, art: Artefact, files: list[Path], setting: Setting) -> tuple[list[Block], Summary]:
    """An artefact's section (its results, or why it has none) and its summary, with its overview row."""
    head = Heading(2, f"{art.name}: {art.title}")
    if not files:
        reason = why_missing(paper, art, setting)
        row = [f"`{art.name}`", art.kind, reason.split(":")[0], "-"]
        return [head, Text(f"No results: {reason}.")], Summary(artefacts=1, rows=[row])
    summary = Summary(artefacts=1, with_results=1)
    prov = read_sidecar(main_file(files, art.name))
    blocks = [head, Bullets(provenance_items(prov, paper)),
              *files_blocks(files, setting.out / "reports", summary, prov.get("profile") or setting.profile)]
    state = "partial" if prov.get("missing_runs") else "yes"
    summary.rows.append([f"`{art.name}`", art.kind, state, claims_text(summary.claims) if summary.claims else "-"])
    return blocks, summary


# --- the report of one paper and the index ----------------------------------------------------------------------

def data_blocks(paper: Paper, data_root: Path | None) -> list[Block]:
    """The paper's datasets under the data root, as `repro data check` sees them."""
    if data_root is None:
        return [Text("Data: no `--data-root` given; `repro data check --data-root DIR` says what is present.")]
    from repro.data.catalog import dataset
    from repro.data.check import check_all

    rows = [[s.name, s.state, s.counts or "-"] for s in check_all(data_root) if paper.name in dataset(s.name).papers]
    return [Text(f"Data under `{data_root}`:"), Grid(["dataset", "state", "counts"], rows)]


def paper_blocks(paper: Paper, setting: Setting) -> tuple[list[Block], Summary]:
    files = paper_files(setting.out, paper)
    summary = Summary()
    body: list[Block] = []
    for art in paper.artefacts.values():
        blocks, part = artefact_blocks(paper, art, files.get(art.name, []), setting)
        body += blocks
        summary.add(part)
    if files.get(None):
        body += [Heading(2, "Other files"), *files_blocks(files[None], setting.out / "reports", summary,
                                                           setting.profile)]
    top = [Heading(1, f"{paper.name}: {paper.title} ({profile_label(setting.profile)})"),
           Text(f"Report of `{setting.out}` (runs dir `{setting.runs_dir}`, profile `{setting.profile}`), "
                f"written {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC from the output folders; "
                "it trains nothing."),
           *([] if setting.profile == "paper" else [Text(
               f"**Profile `{setting.profile}`: fewer epochs, seeds or images than the paper, so its numbers are not "
               "comparable with the paper's.** It checks that everything runs end to end; no cell is counted as "
               "within tolerance, and a claim that fails here says nothing about the paper.")]),
           Text(summary.line()), Grid(["artefact", "kind", "results", "claims"], summary.rows),
           *data_blocks(paper, setting.data_root)]
    if not summary.with_results:
        top.append(Text("No artefact has results under this output root yet: run the commands below "
                        f"(or `repro {paper.name} all --profile {setting.profile}`), then this report again."))
    return top + body, summary


def write_pages(blocks: list[Block], path: Path, title: str) -> list[Path]:
    """`path`.md and `path`.html."""
    md, page = path.with_suffix(".md"), path.with_suffix(".html")
    atomic_write_text(md, to_markdown(blocks))
    atomic_write_text(page, to_html(blocks, title))
    return [md, page]


def report_profile(paper: Paper, out: Path, profile: str | None) -> str:
    """The profile a report is of: `profile`, else the one the outputs record."""
    return profile or recorded_profile(paper_files(out, paper), out)


def write_report(name: str, out: Path, runs_dir: Path, profile: str | None,
                 data_root: Path | None) -> tuple[list[Path], Summary]:
    """reports/<paper>.md and .html under `out`; `profile` None: the one the outputs record."""
    paper = get_paper(name)
    setting = Setting(out, runs_dir, report_profile(paper, out, profile), data_root)
    blocks, summary = paper_blocks(paper, setting)
    title = f"repro report: {name}, {profile_label(setting.profile)}"
    return write_pages(blocks, out / "reports" / name, title), summary


def write_reports(names: list[str], out: Path, runs_dir: Path, profile: str | None,
                  data_root: Path | None) -> list[Path]:
    """One report per paper, and with several an index (reports/index.md, .html) linking them."""
    written, rows = [], []
    for name in names:
        paths, summary = write_report(name, out, runs_dir, profile, data_root)
        written += paths
        rows.append([f"[{name}]({name}.html) ([md]({name}.md))",
                     profile_label(report_profile(get_paper(name), out, profile)), summary.line()])
    if len(names) > 1:
        profiles = sorted({row[1] for row in rows})
        written += write_pages([Heading(1, f"repro reports of `{out}` ({'; '.join(profiles)})"),
                                Grid(["paper", "profile", "summary"], rows)],
                               out / "reports" / "index", f"repro reports, {'; '.join(profiles)}")
    return written

