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

from recipes.engine import (
    CheckpointError,
    TrainingDiverged,
    backend,
    fast_calls,
    fast_updates,
    fit_verbose,
    state_variables,
)

CHECKPOINT_GLOB = "epoch-*.npz"
# Flags that a resumed run may change: they do not change what the run computes. (--epochs may
# change unless the learning-rate schedule spans them; see `Loop`.)
RESUMABLE_FLAGS = frozenset(
    {"epochs", "resume", "overwrite", "out", "quick", "jit", "score_every", "samples"}
)
OVERWRITE_ADVICE = "start over with --overwrite"


def checkpoints(directory):
    """The `epoch-NNNN.npz` files in `directory`, oldest first."""
    return sorted(Path(directory).glob(CHECKPOINT_GLOB))


def latest_checkpoint(directory):
    """The newest `epoch-NNNN.npz` in `directory`, or None."""
    found = checkpoints(directory)
    return found[-1] if found else None


def _reason(error):
    text = str(error.strerror if isinstance(error, OSError) and error.strerror else error)
    return text.splitlines()[0] if text else type(error).__name__


def _json_value(value):
    """NumPy scalars (a metric computed with NumPy) as Python numbers, for `json.dumps`."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def prepare_output(out_dir, *, resume=False, overwrite=False):
    """Checks that `out_dir` can take a run before any training starts; creates `checkpoints/`.

    A new run (neither `resume` nor `overwrite`) into a folder that holds a previous run's
    checkpoints or metrics.csv refuses instead of deleting them; with `overwrite` they are deleted
    (checkpoints, metrics.csv, tensorboard/) and the run starts over. Raises `OutputError` (one line)
    when the folder is a file or cannot be written, or holds a previous run.
    """
    import shutil
    import tempfile

    from recipes.engine import OutputError

    out = Path(out_dir)
    if resume and overwrite:
        raise OutputError("--resume continues the run in --out, --overwrite deletes it: give one")
    if out.exists() and not out.is_dir():
        raise OutputError(f"the output folder {out} is a file (--out must name a folder)")
    checkpoint_dir = out / "checkpoints"
    try:
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=checkpoint_dir):
            pass
    except OSError as error:
        raise OutputError(f"cannot write to the output folder {out} ({_reason(error)})") from None
    for stale in checkpoint_dir.glob("*.tmp"):  # Left by a run killed during a write.
        stale.unlink(missing_ok=True)
    if resume:
        return out
    previous = sorted(p for p in checkpoint_dir.iterdir() if not p.is_dir())
    previous += [out / "metrics.csv"] if (out / "metrics.csv").exists() else []
    if previous and not overwrite:
        names = ", ".join(str(p.relative_to(out)) for p in previous[-2:])
        raise OutputError(
            f"{out} holds a previous run ({names}): continue it with --resume, or start over with "
            "--overwrite (deletes its checkpoints and metrics)"
        )
    for path in previous:
        path.unlink()
    shutil.rmtree(out / "tensorboard", ignore_errors=True)
    return out


def save_checkpoint(path, groups, meta):
    """Writes every variable of `groups` ({name: [variables]}) and `meta` to `path`, atomically.

    The file is written under a temporary name and renamed: a kill or a full disk during the write
    leaves the previous checkpoint as it was. A failed write removes the temporary file and raises
    `CheckpointError` (one line).
    """
    arrays = {
        f"{name}/{i:04d}": keras.ops.convert_to_numpy(v.value)
        for name, variables in groups.items()
        for i, v in enumerate(variables)
    }
    meta = dict(meta, backend=backend(), counts={k: len(v) for k, v in groups.items()})
    arrays["__meta__"] = np.array(json.dumps(meta, default=_json_value))
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())  # On disk before the rename makes it the checkpoint.
        os.replace(tmp, path)
    except BaseException as error:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(error, OSError):
            raise CheckpointError(
                f"could not write checkpoint {path} ({_reason(error)}); the previous checkpoint is kept"
            ) from None
        raise


class _Unreadable(CheckpointError):
    """A checkpoint file that cannot be read (truncated, corrupt, hand-edited metadata)."""

    def __init__(self, path, reason):
        self.summary = f"checkpoint {path} is corrupt or unreadable ({reason})"
        super().__init__(f"{self.summary}; delete it, or {OVERWRITE_ADVICE}")


def _read_checkpoint(path):
    """(arrays, meta) of a checkpoint; `_Unreadable` when the file or its metadata is damaged."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        meta = json.loads(str(arrays.pop("__meta__")))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise _Unreadable(path, _reason(error)) from None
    counts = meta.get("counts") if isinstance(meta, dict) else None
    if not isinstance(counts, dict) or any(
        not isinstance(n, int) or any(f"{name}/{i:04d}" not in arrays for i in range(n))
        for name, n in counts.items()
    ):
        raise _Unreadable(path, "its metadata does not list its arrays")
    return arrays, meta


def _assign(path, arrays, meta, groups):
    for name, variables in groups.items():
        if meta["counts"].get(name) != len(variables):
            raise CheckpointError(
                f"checkpoint {path} does not match this model: it holds "
                f"{meta['counts'].get(name)} variables for {name!r}, the model has "
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


def load_checkpoint(path, groups):
    """Restores the variables of `groups` from `path`; returns its metadata.

    Raises `CheckpointError` (one line) when the file is unreadable or belongs to another model.
    """
    arrays, meta = _read_checkpoint(path)
    _assign(path, arrays, meta, groups)
    return meta


def restore_checkpoint(directory, groups, *, check=None, log=print):
    """Restores `groups` from the newest usable `epoch-NNNN.npz` in `directory`.

    A damaged newest checkpoint (a write killed before the rename cannot leave one, but a disk can)
    is renamed to `*.corrupt` and the previous one is used, with one line through `log`.
    `check(path, meta)` may reject a checkpoint's metadata: `CheckpointError` stops the resume.

    Returns:
        `(path, meta)`, or None when there is no checkpoint.

    Raises:
        CheckpointError: no checkpoint is usable, or the usable one does not match this model.
    """
    found = checkpoints(directory)
    damaged = []
    for path in reversed(found):
        try:
            arrays, meta = _read_checkpoint(path)
            if check is not None:
                check(path, meta)
        except _Unreadable as error:
            damaged.append(error)
            continue
        _assign(path, arrays, meta, groups)
        if damaged:
            for bad in found[len(found) - len(damaged) :]:
                try:
                    bad.rename(bad.with_name(bad.name + ".corrupt"))
                except OSError:
                    pass
            log(f"Skipped: {'; '.join(e.summary for e in damaged)}; resuming from {path}")
        return path, meta
    if len(damaged) > 1:
        raise CheckpointError(
            f"{damaged[0].summary}, and no older checkpoint is usable; {OVERWRITE_ADVICE}"
        )
    if damaged:
        raise damaged[0]
    return None


def _check_run_meta(path, meta):
    """The metadata a Loop checkpoint needs: a whole-number epoch and (newer files) its history."""
    epoch = meta.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise _Unreadable(path, f"its metadata has no whole-number epoch but {epoch!r}")
    history = meta.get("history", [])
    if not isinstance(history, list) or not all(isinstance(row, dict) for row in history):
        raise _Unreadable(path, "its metadata has no list of metrics rows")


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

    After every epoch a checkpoint `checkpoints/epoch-NNNN.npz` holds the variables of `state`
    (weights, optimizer slots and iterations, hence the schedule position, seed generators), the
    epoch, the metrics rows and the run's config; `metrics.csv` is rewritten from those rows. A
    resumed run continues from the newest usable checkpoint and equals the uninterrupted run.

    Args:
        out_dir: where `metrics.csv`, `tensorboard/` and `checkpoints/` go; checked before anything
            is trained (`prepare_output`).
        state: {name: model, optimizer, SeedGenerator or variable}: everything a checkpoint holds.
        resume: continue from the newest usable checkpoint in `out_dir/checkpoints` (a damaged
            newest one is skipped, with one line).
        overwrite: start over in a folder that holds a previous run, deleting its checkpoints
            and metrics. Without `resume` or `overwrite` such a folder is refused (`OutputError`).
        keep: how many checkpoints to keep.
        config: the run's settings ({flag name: value}, e.g. `dataclasses.asdict(config)`); a
            resume with other values (except `RESUMABLE_FLAGS`) is refused with one line.
        epochs_in_schedule: the learning-rate schedule spans the run's `epochs`, so a resume with
            another number of epochs is refused with one line (it would not continue the schedule).

    Example:
        loop = Loop("runs/dcgan", {"generator": g, "g_optimizer": g_opt}, resume=True)
        loop.fit(step, lambda epoch: batches, epochs=25, steps_per_epoch=28)
    """

    def __init__(
        self,
        out_dir,
        state,
        *,
        resume=False,
        overwrite=False,
        keep=2,
        verbose=True,
        config=None,
        epochs_in_schedule=False,
    ):
        self.out_dir = prepare_output(out_dir, resume=resume, overwrite=overwrite)
        self.checkpoint_dir = self.out_dir / "checkpoints"
        self.groups = {name: state_variables([obj]) for name, obj in state.items()}
        fast_updates(state.values(), fit=True)  # torch: in-place Adam/RMSprop updates for fit()
        fast_calls(state.values())  # torch: functional models without Layer.__call__ per layer
        self.keep = keep
        self.verbose = verbose
        self.config = None
        if config is not None:
            plain = json.loads(json.dumps(dict(config), default=str))
            self.config = {k: v for k, v in plain.items() if k not in RESUMABLE_FLAGS}
        self.epochs_in_schedule = epochs_in_schedule
        self.epoch = 0
        self.history = []
        self.restored = None  # (path, meta) of the checkpoint resumed from
        if not resume:
            return
        self.restored = restore_checkpoint(
            self.checkpoint_dir, self.groups, check=self._check_meta, log=self._print
        )
        if self.restored is None:
            self._print(f"No checkpoint in {self.checkpoint_dir}: starting from scratch")
            return
        path, meta = self.restored
        self.epoch = meta["epoch"]
        # Older checkpoints hold no rows: then they come from metrics.csv.
        self.history = meta["history"] if "history" in meta else self._read_metrics()[: self.epoch]
        self._print(f"Resumed from {path} (epoch {self.epoch}, saved on {meta['backend']})")

    def _check_meta(self, path, meta):
        _check_run_meta(path, meta)
        saved = meta.get("config")
        if self.config is None or not isinstance(saved, dict):
            return
        changed = [k for k in self.config if k in saved and saved[k] != self.config[k]]
        if changed:
            flags = ", ".join(
                f"--{k.replace('_', '-')} {saved[k]} (now {self.config[k]})" for k in changed[:3]
            )
            raise CheckpointError(
                f"checkpoint {path} was written with {flags}: resume with the same flags, or "
                f"{OVERWRITE_ADVICE}"
            )

    def _check_epochs(self, epochs):
        if not (self.epochs_in_schedule and self.restored):
            return
        path, meta = self.restored
        saved = meta.get("epochs")
        if saved is not None and saved != epochs:
            raise CheckpointError(
                f"checkpoint {path} belongs to a run of --epochs {saved}, and its learning-rate "
                f"schedule spans them: resume with --epochs {saved}, or {OVERWRITE_ADVICE}"
            )

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
        tmp = self.metrics_path.with_name(self.metrics_path.name + ".tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(self.history)
        os.replace(tmp, self.metrics_path)

    def run(self, train_epoch, *, epochs):
        """Calls `train_epoch(epoch) -> logs` for each epoch from the current one up to `epochs`,
        and after each writes the checkpoint, metrics.csv and TensorBoard scalars. For training
        that is not a step function, e.g. one `model.fit` epoch per call.

        Returns:
            The list of per-epoch logs (also in `metrics.csv`).
        """
        self._check_epochs(epochs)
        events = _EventWriter(self.out_dir / "tensorboard")
        try:
            for epoch in range(self.epoch + 1, epochs + 1):
                logs = train_epoch(epoch)
                row = {"epoch": epoch, **logs}
                # The checkpoint first: metrics.csv is rewritten from its rows on --resume.
                meta = {"epoch": epoch, "epochs": epochs, "history": [*self.history, row]}
                if self.config is not None:
                    meta["config"] = self.config
                save_checkpoint(self.checkpoint_dir / f"epoch-{epoch:04d}.npz", self.groups, meta)
                for old in checkpoints(self.checkpoint_dir)[: -self.keep]:
                    old.unlink()
                self.epoch = epoch
                self.history.append(row)
                self._write_metrics()
                events.write(epoch, logs)
        finally:
            events.close()
        return self.history

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

        def train_epoch(epoch):
            self._print(f"Epoch {epoch}/{epochs}")
            logs = self._run_epoch(step, batches(epoch), epoch, steps_per_epoch)
            if on_epoch_end is not None:
                logs.update(on_epoch_end(epoch, logs) or {})
            return logs

        return self.run(train_epoch, epochs=epochs)

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
