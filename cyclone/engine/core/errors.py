"""Errors of the pure core: a stage that cannot be turned into a pod."""

from __future__ import annotations


class StagePodError(ValueError):
    """A stage's pod cannot be generated; the message names the stage and the cause.

    The run controller records it on the stage as reason ``GeneratePodError``.
    """

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f'stage "{stage}": {message}')
        self.stage = stage
        self.detail = message
