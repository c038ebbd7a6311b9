"""A handler's cold start without garbage collection: each ``functions/*/app.py`` imports this module first
and calls ``loaded()`` once its own imports are done.

Importing boto3, pydantic, Powertools and the service's models allocates hundreds of thousands of objects
that live as long as the process; the collector would walk them again and again while they are made (each
full collection over all of them) and at every later collection. Importing this pauses collection;
``loaded()`` moves everything alive into the permanent generation (``gc.freeze()``: later collections skip
it) and turns collection back on. Only the standard library is imported here."""

from __future__ import annotations

import gc

gc.disable()


def loaded() -> None:
    """The handler's imports are done: what they made is frozen out of collections, which resume."""
    gc.freeze()
    gc.enable()
