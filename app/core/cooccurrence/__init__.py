"""Co-occurrence ("who chose X also chose Y"), in one home.

* :mod:`~app.core.cooccurrence.index`: the item-to-item neighbour index and the score part it
  gives each offer from a user's recent items;
* :mod:`~app.core.cooccurrence.table`: the worker's live neighbour table, mirrored from the
  ``item-neighbours`` topic, and the "Because you chose ..." reasons;
* :mod:`~app.core.cooccurrence.hybrid`: the hybrid score with its offline-tuned weights.

The index is learned offline by :mod:`app.learning.cooccurrence`.
"""
