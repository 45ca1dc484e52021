"""What a run shows: warm-start epochs, then progress over frames on stderr.

On a terminal the progress is a tqdm bar. Where stderr is not a terminal (a log file, a pipe, a
batch scheduler's output), a bar's carriage returns and cursor movements would fill the log
with one redrawn line per refresh, so the progress is a plain line instead, at most one every
PLAIN_LINE_EVERY_S seconds. transformers' own bars ("Loading weights", "Writing model shards")
are switched off while ours is shown (a checkpoint save would draw a second bar through ours)
and wherever ours would be off (`hf_progress_bars`).
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import TrainConfig

PLAIN_LINE_EVERY_S = 30.0
"""Seconds between two plain progress lines when stderr is not a terminal."""


def stderr_is_terminal() -> bool:
    """Whether stderr, where progress goes, is a terminal (else a file or a pipe)."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


def hf_progress_bars(show: bool) -> contextlib.AbstractContextManager:
    """A context in which transformers' (and huggingface_hub's) progress bars are shown only if
    `show`; their previous state comes back after it."""
    if show:
        return contextlib.nullcontext()
    from llm_policy.offline import quiet_progress_bars

    return quiet_progress_bars()


class ProgressReporter:
    """Progress over frames with frames/s, success rate and approximate KL, and one-line
    messages; shows nothing when run.progress is False, nor on the processes other than the
    main one of a multi-process run (`main_process=False`). A tqdm bar on a terminal, plain
    lines elsewhere (`live=None` decides from stderr)."""

    def __init__(
        self, config: TrainConfig, *, main_process: bool = True, live: bool | None = None
    ) -> None:
        self.enabled = config.run.progress and main_process
        self.live = self.enabled and (stderr_is_terminal() if live is None else live)
        """A redrawn tqdm bar; False: plain lines (stderr is a file or a pipe)."""
        # With a time budget the frame total is not what ends the run: count frames only.
        self.total = (
            None if config.run.max_minutes is not None else config.num_updates * config.batch_size
        )
        self.bar: Any = None
        self.frames = 0
        self._last_line_at = -float("inf")
        self._unreported: str | None = None
        self._quiet_hf = contextlib.ExitStack()

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def start(self, frames: int) -> None:
        """Open the bar at `frames` frames already done (non-zero on resume)."""
        self.frames = frames
        if not self.enabled:
            return
        # A save's "Writing model shards" bar would break ours, or add \r to a log.
        self._quiet_hf.enter_context(hf_progress_bars(False))
        if not self.live:
            return
        from tqdm.auto import tqdm

        # One speed: the postfix's fps (this update's charts/SPS, as logged), not tqdm's own
        # rate, which would average over checkpoint saves and evaluations too.
        if self.total is None:
            bar_format = "{desc}: {n_fmt} frames [{elapsed}{postfix}]"
        else:
            bar_format = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} frames [{elapsed}<{remaining}{postfix}]"
        self.bar = tqdm(
            total=self.total,
            initial=frames,
            unit="frame",
            desc="train",
            dynamic_ncols=True,
            bar_format=bar_format,
        )

    def update(self, frames: int, metrics: dict[str, float]) -> None:
        """Advance by `frames` after an update whose logged metrics are `metrics`."""
        self.frames += frames
        if not self.enabled:
            return
        fps = f"{metrics['charts/SPS']:.0f}"
        success = f"{metrics['charts/success_rate']:.2f}"
        kl = f"{metrics['losses/approx_kl']:.3f}"
        if self.bar is not None:
            self.bar.update(frames)
            self.bar.set_postfix({"fps": fps, "success": success, "kl": kl})
            return
        done = f"{self.frames}" if self.total is None else f"{self.frames}/{self.total}"
        self._unreported = f"train: {done} frames, fps={fps}, success={success}, kl={kl}"
        if time.monotonic() - self._last_line_at >= PLAIN_LINE_EVERY_S:
            self._plain_line()

    def _plain_line(self) -> None:
        if self._unreported is not None:
            print(self._unreported, file=sys.stderr, flush=True)
            self._unreported = None
            self._last_line_at = time.monotonic()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self.enabled and not self.live:
            self._plain_line()  # where the run ended
        self._quiet_hf.close()
