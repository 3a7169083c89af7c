"""The training loop: epochs, progress bar, metrics.csv, TensorBoard, checkpoints, resume, NaN stop."""

import csv
import json
import math
import os
import sys
import time
import types
import zipfile
from pathlib import Path

import keras
import numpy as np

from recipes.engine import CheckpointError, TrainingDiverged, backend, fit_verbose, state_variables

CHECKPOINT_GLOB = "epoch-*.npz"


def latest_checkpoint(directory):
    """The newest `epoch-NNNN.npz` in `directory`, or None."""
    found = sorted(Path(directory).glob(CHECKPOINT_GLOB))
    return found[-1] if found else None


def save_checkpoint(path, groups, meta):
    """Writes every variable of `groups` ({name: [variables]}) and `meta` to `path`, atomically."""
    arrays = {
        f"{name}/{i:04d}": keras.ops.convert_to_numpy(v.value)
        for name, variables in groups.items()
        for i, v in enumerate(variables)
    }
    meta = dict(meta, backend=backend(), counts={k: len(v) for k, v in groups.items()})
    arrays["__meta__"] = np.array(json.dumps(meta))
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def load_checkpoint(path, groups):
    """Restores the variables of `groups` from `path`; returns its metadata.

    Raises `CheckpointError` (one line) when the file is unreadable or belongs to another model.
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        meta = json.loads(str(arrays.pop("__meta__")))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(
            f"checkpoint {path} is corrupt or unreadable ({reason}); delete it, or run without "
            "--resume to start over"
        ) from None
    for name, variables in groups.items():
        if meta.get("counts", {}).get(name) != len(variables):
            raise CheckpointError(
                f"checkpoint {path} does not match this model: it holds "
                f"{meta.get('counts', {}).get(name)} variables for {name!r}, the model has "
                f"{len(variables)} (different --arch or widths?)"
            )
        for i, v in enumerate(variables):
            value = arrays[f"{name}/{i:04d}"]
            if value.shape != tuple(v.shape):
                raise CheckpointError(
                    f"checkpoint {path} does not match this model: {v.path} has shape "
                    f"{tuple(v.shape)}, the checkpoint {value.shape}"
                )
    for name, variables in groups.items():
        for i, v in enumerate(variables):
            v.assign(arrays[f"{name}/{i:04d}"])
    return meta


class _EventWriter:
    """TensorBoard scalars through the `tensorboard` package, when it is installed.

    The package would import TensorFlow to write a file; under the other backends it is told to use
    its own stub instead, which keeps a torch or JAX run free of TensorFlow.
    """

    def __init__(self, logdir):
        self.writer = None
        if "tensorflow" not in sys.modules:
            sys.modules.setdefault(
                "tensorboard.compat.notf", types.ModuleType("tensorboard.compat.notf")
            )
        try:
            from tensorboard.compat.proto.event_pb2 import Event
            from tensorboard.compat.proto.summary_pb2 import Summary
            from tensorboard.summary.writer.event_file_writer import EventFileWriter
        except ImportError:
            return
        self.Event, self.Summary = Event, Summary
        self.writer = EventFileWriter(str(logdir))

    def write(self, step, scalars):
        if self.writer is None:
            return
        values = [self.Summary.Value(tag=k, simple_value=v) for k, v in scalars.items()]
        summary = self.Summary(value=values)
        self.writer.add_event(self.Event(wall_time=time.time(), step=step, summary=summary))
        self.writer.flush()

    def close(self):
        if self.writer is not None:
            self.writer.close()


def read_metrics(path):
    """The rows of a metrics.csv as {name: float} dicts ([] when there is no file yet).

    Metrics logged only on some epochs (a quality score) are empty in the others and left out.
    """
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


class Loop:
    """Runs epochs of a step function and keeps everything needed to stop and resume.

    Args:
        out_dir: where `metrics.csv`, `tensorboard/` and `checkpoints/` go.
        state: {name: model, optimizer, SeedGenerator or variable}: everything a checkpoint holds.
        resume: continue from the newest checkpoint in `out_dir/checkpoints` (weights, optimizer
            slots, seed generators, epoch). Without it, old checkpoints there are removed.
        keep: how many checkpoints to keep.

    Example:
        loop = Loop("runs/dcgan", {"generator": g, "g_optimizer": g_opt}, resume=True)
        loop.fit(step, lambda epoch: batches, epochs=25, steps_per_epoch=28)
    """

    def __init__(self, out_dir, state, *, resume=False, keep=2, verbose=True):
        self.out_dir = Path(out_dir)
        self.checkpoint_dir = self.out_dir / "checkpoints"
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        self.groups = {name: state_variables([obj]) for name, obj in state.items()}
        self.keep = keep
        self.verbose = verbose
        self.epoch = 0
        self.history = []
        latest = latest_checkpoint(self.checkpoint_dir)
        if resume and latest is not None:
            meta = load_checkpoint(latest, self.groups)
            self.epoch = int(meta["epoch"])
            self.history = self._read_metrics()[: self.epoch]
            self._print(f"Resumed from {latest} (epoch {self.epoch}, saved on {meta['backend']})")
        elif resume:
            self._print(f"No checkpoint in {self.checkpoint_dir}: starting from scratch")
        elif latest is not None:
            for old in self.checkpoint_dir.glob(CHECKPOINT_GLOB):
                old.unlink()

    def _print(self, message):
        if self.verbose:
            print(message, flush=True)

    @property
    def metrics_path(self):
        return self.out_dir / "metrics.csv"

    def _read_metrics(self):
        return read_metrics(self.metrics_path)

    def _write_metrics(self):
        fields = list(dict.fromkeys(key for row in self.history for key in row))
        with open(self.metrics_path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(self.history)

    def fit(self, step, batches, *, epochs, steps_per_epoch, on_epoch_end=None):
        """Trains from the current epoch up to `epochs`.

        Args:
            step: `step(*batch) -> {name: scalar tensor}`, usually from `engine.function`.
            batches: `batches(epoch) -> iterable of tuples of arrays`; deterministic per epoch, so
                a resumed run sees the same data as an uninterrupted one.
            on_epoch_end: `on_epoch_end(epoch, logs) -> dict or None`, for samples and extra metrics
                (returned values are logged too).

        Returns:
            The list of per-epoch logs (also in `metrics.csv`).

        Raises:
            TrainingDiverged: a loss became NaN or infinite. No checkpoint is written for that epoch,
                so the last good one stays the newest.
        """
        events = _EventWriter(self.out_dir / "tensorboard")
        try:
            for epoch in range(self.epoch + 1, epochs + 1):
                self._print(f"Epoch {epoch}/{epochs}")
                logs = self._run_epoch(step, batches(epoch), epoch, steps_per_epoch)
                if on_epoch_end is not None:
                    logs.update(on_epoch_end(epoch, logs) or {})
                save_checkpoint(
                    self.checkpoint_dir / f"epoch-{epoch:04d}.npz", self.groups, {"epoch": epoch}
                )
                for old in sorted(self.checkpoint_dir.glob(CHECKPOINT_GLOB))[: -self.keep]:
                    old.unlink()
                self.epoch = epoch
                self.history.append({"epoch": epoch, **logs})
                self._write_metrics()
                events.write(epoch, logs)
        finally:
            events.close()
        return self.history

    def _run_epoch(self, step, batches, epoch, steps_per_epoch):
        # A live bar on a terminal; one summary line per epoch in a log file or a pipe.
        progbar = keras.utils.Progbar(steps_per_epoch, verbose=fit_verbose() if self.verbose else 0)
        totals, count = {}, 0
        start = time.perf_counter()
        for batch in batches:
            out = step(*batch)
            values = {k: float(keras.ops.convert_to_numpy(v)) for k, v in out.items()}
            for name, value in values.items():
                if not math.isfinite(value):
                    last = latest_checkpoint(self.checkpoint_dir)
                    raise TrainingDiverged(
                        f"{name} became {value} at epoch {epoch}, step {count + 1}: training "
                        f"stopped; last good checkpoint: {last or 'none (no epoch finished)'}"
                    )
                totals[name] = totals.get(name, 0.0) + value
            count += 1
            progbar.update(count, values=list(values.items()), finalize=count == steps_per_epoch)
        seconds = time.perf_counter() - start
        logs = {k: v / max(count, 1) for k, v in totals.items()}
        logs.update(seconds=seconds, steps_per_second=count / seconds if seconds else 0.0)
        return logs
