"""Training jobs: a new model is trained in a child process, so TensorFlow and
gradient boosting never stall the service that answers forecasts; progress comes
back over a queue; on success the parent activates the new version atomically.
One job runs at a time.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from predictors.panel import Panel

LOG = logging.getLogger(__name__)

PENDING, RUNNING, SUCCEEDED, FAILED = "PENDING", "RUNNING", "SUCCEEDED", "FAILED"


@dataclass
class Job:
    job_id: str
    state: str = PENDING
    progress: float = 0.0
    message: str = "queued"
    model_version: str = ""
    started_s: float = field(default_factory=time.time)
    finished_s: float = 0.0
    changed: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def update(self, **changes) -> None:
        with self.changed:
            for key, value in changes.items():
                setattr(self, key, value)
            self.changed.notify_all()

    @property
    def done(self) -> bool:
        return self.state in (SUCCEEDED, FAILED)


def _worker(panel_path: str, out_root: str, horizons: list[int], validation_steps: int, events) -> None:
    """Child process: train, save under out_root/<version>, report through events."""
    try:
        from predictors.selection import train
        data = np.load(panel_path, allow_pickle=False)
        panel = Panel(data["values"], data["times"], int(data["step_s"]), tuple(data["names"].tolist()))

        def progress(fraction: float, message: str) -> None:
            events.put(("progress", float(fraction), str(message)))

        selection, report = train(panel, horizons, validation_steps=validation_steps or None,
                                  progress=progress)
        selection.save(Path(out_root) / selection.version)
        events.put(("done", selection.version, ""))
    except BaseException as err:  # noqa: BLE001 - everything is reported to the parent
        events.put(("failed", 0.0, f"{type(err).__name__}: {err}"))


class TrainingRunner:
    def __init__(self, models_dir: Path, activate):
        self.models_dir = Path(models_dir)
        self.activate = activate
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._proc: mp.Process | None = None
        self._running: Job | None = None

    def start(self, panel: Panel, horizons: list[int], validation_steps: int) -> Job:
        with self._lock:
            if self._running is not None and not self._running.done:
                raise RuntimeError(f"training job {self._running.job_id} is still running")
            job = Job(uuid.uuid4().hex[:12])
            self.jobs[job.job_id] = job
            self._running = job
        tmp = tempfile.NamedTemporaryFile(prefix="foresight-panel-", suffix=".npz", delete=False)
        np.savez(tmp, values=panel.values, times=panel.times, step_s=panel.step_s,
                 names=np.array(panel.names, dtype=str))
        tmp.close()
        ctx = mp.get_context("spawn")
        events = ctx.Queue()
        self._proc = ctx.Process(target=_worker, args=(tmp.name, str(self.models_dir), list(horizons),
                                                       validation_steps, events), daemon=True)
        self._proc.start()
        job.update(state=RUNNING, message=f"training {panel.n_series} series on {len(panel)} steps")
        threading.Thread(target=self._monitor, args=(job, self._proc, events, Path(tmp.name)),
                         daemon=True, name=f"train-{job.job_id}").start()
        LOG.info("training job %s started: %d series, %d steps, horizons %s steps", job.job_id,
                 panel.n_series, len(panel), horizons)
        return job

    def _monitor(self, job: Job, proc: mp.Process, events, panel_path: Path) -> None:
        try:
            while True:
                try:
                    kind, value, message = events.get(timeout=0.5)
                except queue.Empty:
                    if not proc.is_alive():
                        job.update(state=FAILED, finished_s=time.time(),
                                   message=f"training process exited with code {proc.exitcode}")
                        return
                    continue
                if kind == "progress":
                    job.update(progress=value, message=message)
                elif kind == "done":
                    try:
                        self.activate(value)
                    except Exception as err:  # noqa: BLE001 - reported on the job
                        job.update(state=FAILED, finished_s=time.time(), message=f"activation failed: {err}")
                        return
                    job.update(state=SUCCEEDED, progress=1.0, model_version=value, finished_s=time.time(),
                               message=f"serving {value}")
                    LOG.info("training job %s produced %s", job.job_id, value)
                    return
                else:
                    job.update(state=FAILED, finished_s=time.time(), message=message)
                    LOG.error("training job %s failed: %s", job.job_id, message)
                    return
        finally:
            proc.join(5)
            panel_path.unlink(missing_ok=True)

    def stop(self) -> None:
        proc = self._proc
        if proc is not None and proc.is_alive():
            proc.terminate()
            proc.join(5)
            if proc.is_alive():
                proc.kill()
