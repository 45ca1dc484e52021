"""What a run shows on the terminal: warm-start epochs, then a progress bar over frames."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import TrainConfig


class ProgressReporter:
    """A tqdm bar of frames with frames/s, success rate and approximate KL in its postfix, and
    one-line messages; shows nothing when run.progress is False, nor on the processes other
    than the main one of a multi-process run (`main_process=False`)."""

    def __init__(self, config: TrainConfig, *, main_process: bool = True) -> None:
        self.enabled = config.run.progress and main_process
        # With a time budget the frame total is not what ends the run: count frames only.
        self.total = (
            None if config.run.max_minutes is not None else config.num_updates * config.batch_size
        )
        self.bar: Any = None

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def start(self, frames: int) -> None:
        """Open the bar at `frames` frames already done (non-zero on resume)."""
        if not self.enabled:
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=self.total, initial=frames, unit="frame", desc="train", dynamic_ncols=True
        )

    def update(self, frames: int, metrics: dict[str, float]) -> None:
        """Advance by `frames` after an update whose logged metrics are `metrics`."""
        if self.bar is None:
            return
        self.bar.update(frames)
        self.bar.set_postfix(
            fps=f"{metrics['charts/SPS']:.0f}",
            success=f"{metrics['charts/success_rate']:.2f}",
            kl=f"{metrics['losses/approx_kl']:.3f}",
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
