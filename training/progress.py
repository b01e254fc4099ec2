"""A rich progress bar for transformers' ``Trainer``: steps, the latest train and eval loss, tokens/s.

Replaces the Trainer's tqdm bar and its printing of every log dict (one line per ``logging_steps``), which
interleave on a terminal; evaluation shows as a second bar while it runs. Only the main process draws.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from transformers import TrainerCallback


class RichProgressCallback(TrainerCallback):
    """Draws on stderr (or the given console); the numbers shown are also in ``state.log_history``."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress: Progress | None = None
        self.task = None
        self.eval_task = None
        self.fields = {"loss": "-", "eval_loss": "-", "tok_s": "-"}
        self._t0 = 0.0
        self._tokens0 = 0
        self._eval_started = 0.0
        self._eval_seconds = 0.0  # not training time: left out of tokens/s

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201, D102
        if not state.is_world_process_zero:
            return
        self.progress = Progress(
            TextColumn("[bold]{task.description:>8}"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
            TextColumn("loss {task.fields[loss]}  eval {task.fields[eval_loss]}  {task.fields[tok_s]} tokens/s"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=self.console, transient=False)
        self.progress.start()
        self.task = self.progress.add_task("training", total=state.max_steps, completed=state.global_step, **self.fields)
        self._t0, self._tokens0 = time.perf_counter(), state.num_input_tokens_seen

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201, D102
        if self.progress is None:
            return
        seconds = time.perf_counter() - self._t0 - self._eval_seconds
        tokens = state.num_input_tokens_seen - self._tokens0
        if seconds > 0 and tokens > 0:
            self.fields["tok_s"] = f"{tokens / seconds:,.0f}"
        self.progress.update(self.task, completed=state.global_step, **self.fields)

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):  # noqa: ANN001, ANN201, D102
        if self.progress is None or eval_dataloader is None:
            return
        if self.eval_task is None:
            self._eval_started = time.perf_counter()
            self.eval_task = self.progress.add_task("eval", total=len(eval_dataloader), **self.fields)
        self.progress.advance(self.eval_task)

    def _end_eval(self) -> None:
        if self.progress is not None and self.eval_task is not None:
            self.progress.remove_task(self.eval_task)
            self.eval_task = None
            self._eval_seconds += time.perf_counter() - self._eval_started

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):  # noqa: ANN001, ANN201, D102
        self._end_eval()
        if self.progress is not None and metrics and "eval_loss" in metrics:
            self.fields["eval_loss"] = f"{metrics['eval_loss']:.4f}"
            self.progress.update(self.task, **self.fields)

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001, ANN201, D102
        if self.progress is not None and logs and "loss" in logs:
            self.fields["loss"] = f"{float(logs['loss']):.4f}"
            self.progress.update(self.task, **self.fields)

    def on_train_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN201, D102
        self._end_eval()
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
