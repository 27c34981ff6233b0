"""The knowledge base (知识库, 000 §三(一)4): common questions and their answers, taken from records in one click,
suggested while an agent types a question, searchable, counting their uses.

``entries``: the entries and every write to them; ``section``: the ``knowledge:`` section of a definition (which
record types feed the knowledge base, from which fields). ``setup`` is called once by the composition root.
"""
from __future__ import annotations

from kefu.knowledge.entries import ensure_indexes
from kefu.knowledge.section import register_section

__all__ = ["ensure_indexes", "setup"]


def setup() -> None:
    """Register the ``knowledge`` section (its entries' indexes come with the others': kefu.runtime.storage)."""
    register_section()
