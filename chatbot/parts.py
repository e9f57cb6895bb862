"""The project's exercises, as the project notebook exported them.

The notebook ends its milestones with ``export_functions("chatbot_parts", [...])``;
this package imports that file (``exports/chatbot_parts.py``, or under
``$WORKBOOK_EXPORTS``), so the service runs on the student's own functions, the way
later labs run on Lab 1's ``rnn_scratch.py``.
"""

from __future__ import annotations

from types import ModuleType

NAMES = ("sample_negatives", "attention_match", "info_nce_loss", "recall_at_k")


class PartsMissingError(RuntimeError):
    """The exported exercises are not there (or incomplete); the message says what to run."""


def load() -> ModuleType:
    """The exported module, checked to have every function the package calls."""
    from utils.export import export_path, load_module

    path = export_path("chatbot_parts")
    if not path.is_file():
        raise PartsMissingError(
            f"{path} is missing: run the export cell at the end of the project notebook "
            "(labs/project_chatbot.ipynb, Milestone 5) first"
        )
    module = load_module(path, "chatbot_parts")
    missing = [n for n in NAMES if not callable(getattr(module, n, None))]
    if missing:
        raise PartsMissingError(
            f"{path} lacks {', '.join(missing)}: export every function the export cell lists"
        )
    return module
