"""Cluster launcher through submitit: a job array whose tasks claim runs from the shared run store.

Every task trains packs (`repro.runs.launch.packs`) until no run is left that nobody holds, exactly as a local
`repro` process does, so tasks never train the same run and any number of them (or local processes) can work
on one store. A preempted or timed-out task is requeued by submitit (`checkpoint`) and resumes its runs from
their checkpoints. Submitted jobs are listed in `<runs>/slurm/jobs.jsonl` for `repro status`.

`REPRO_SUBMITIT=local` runs the array with submitit's local executor (subprocesses on this machine): the
tests use it, and it lets a workstation use the same code path.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repro.runs.launch import LaunchOptions, execute, todo
from repro.runs.store import RunRecord, RunStore

POLL_SECONDS = 5.0


@dataclass(frozen=True)
class SlurmOptions:
    """The cluster side of `--launcher slurm`."""

    partition: str | None = None
    gpus_per_job: int = 1
    time_minutes: int = 240
    array_parallelism: int = 16
    extra: dict[str, str] = field(default_factory=dict)  # --slurm-opt key=value, passed to submitit


class Worker:
    """One array task: train what the store still needs; requeued on preemption or timeout."""

    def __init__(self, runs_dir: str, configs: list[dict[str, Any]], opts: LaunchOptions):
        self.runs_dir, self.configs, self.opts = runs_dir, configs, opts

    def __call__(self) -> list[str]:
        from repro.config import RunConfig

        store = RunStore(Path(self.runs_dir))
        records = [store.record(RunConfig.from_dict(c)) for c in self.configs]
        execute(store, records, self.opts, _task_events)
        return [r.state() for r in records]

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """submitit calls this on preemption or timeout: resubmit the same task (runs resume from checkpoints)."""
        import submitit

        return submitit.helpers.DelayedSubmission(Worker(self.runs_dir, self.configs, self.opts))


def _task_events(event: dict[str, Any]) -> None:
    if event.get("event") in ("start", "done", "failed"):
        print(json.dumps(event), flush=True)  # the task's log in the submitit folder


def executor(folder: Path, slurm: SlurmOptions) -> Any:
    """submitit's Slurm executor with the options, or its local executor when REPRO_SUBMITIT=local."""
    import submitit

    if os.environ.get("REPRO_SUBMITIT") == "local":
        ex = submitit.LocalExecutor(folder=folder)
        ex.update_parameters(timeout_min=slurm.time_minutes)
        return ex
    ex = submitit.AutoExecutor(folder=folder)
    if ex.cluster != "slurm":
        raise ValueError("--launcher slurm: no Slurm cluster here (sbatch not found); use --launcher local, or set "
                         "REPRO_SUBMITIT=local to run the job array with submitit's local executor")
    params: dict[str, Any] = {"timeout_min": slurm.time_minutes, "gpus_per_node": slurm.gpus_per_job,
                              "slurm_array_parallelism": slurm.array_parallelism, "name": "repro"}
    if slurm.partition:
        params["slurm_partition"] = slurm.partition
    params |= {k if k.startswith("slurm_") else f"slurm_{k}": v for k, v in slurm.extra.items()}
    ex.update_parameters(**params)
    return ex


def submit(store: RunStore, records: list[RunRecord], opts: LaunchOptions, slurm: SlurmOptions) -> list[Any]:
    """Submit a job array of min(#packs, array parallelism) tasks for the records that are not done."""
    from repro.runs.launch import packs

    pending = todo(records)
    if not pending:
        return []
    tasks = max(1, min(len(packs(pending, opts.pack_size())), slurm.array_parallelism))
    folder = store.root / "slurm" / time.strftime("%Y%m%d-%H%M%S")
    ex = executor(folder, slurm)
    configs = [r.config.to_dict() for r in pending]
    task_opts = LaunchOptions(device="auto", workers=1, checkpoint_seconds=opts.checkpoint_seconds,
                              profile=opts.profile, pack=opts.pack)
    with ex.batch():
        jobs = [ex.submit(Worker(str(store.root), configs, task_opts)) for _ in range(tasks)]
    with open(store.root / "slurm" / "jobs.jsonl", "a") as f:
        for job in jobs:
            f.write(json.dumps({"job_id": str(job.job_id), "folder": str(folder), "runs": len(configs),
                                "submitted": time.strftime("%Y-%m-%d %H:%M:%S"),
                                "executor": type(ex).__name__}) + "\n")
    return jobs


def run(store: RunStore, records: list[RunRecord], opts: LaunchOptions, slurm: SlurmOptions,
        events: Any = None) -> None:
    """Submit and wait: poll the store until every record is done or permanently failed, or every job ended
    (a job's error is re-raised)."""
    jobs = submit(store, records, opts, slurm)
    while todo(records) and not all(j.done() for j in jobs):
        time.sleep(POLL_SECONDS)
    for j in jobs:
        j.result()  # raises if a task failed


def job_states(runs_dir: Path) -> list[dict[str, str]]:
    """The submitted jobs of a run store with their state as submitit reports it (for `repro status`)."""
    path = Path(runs_dir) / "slurm" / "jobs.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        job = json.loads(line)
        job["state"] = _state(job)
        out.append(job)
    return out


def _state(job: dict[str, str]) -> str:
    folder = Path(job["folder"])
    if (folder / f"{job['job_id']}_0_result.pkl").exists() or (folder / f"{job['job_id']}_result.pkl").exists():
        return "finished"
    if job["executor"] == "SlurmExecutor":
        try:
            import submitit

            return submitit.SlurmJob(folder, job["job_id"]).state
        except Exception as e:  # sacct unavailable
            return f"unknown ({type(e).__name__})"
    return "submitted"
