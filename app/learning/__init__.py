"""The offline learning loop: collaborative item vectors and item neighbours from a log.

Pure numpy + scipy, no I/O (the ``nbo embed`` command does the reading and publishing).
"""

from app.learning.cooccurrence import CooccurrenceConfig, learn_cooccurrence
from app.learning.factorisation import (
    Factorisation,
    FactorisationConfig,
    factorise,
    learn_item_vectors,
)
from app.learning.interactions import InteractionLog
from app.learning.model import CollabConfig, CollabModel, train_collab_model
from app.learning.tag_space import blend_with_tags

__all__ = [
    "CollabConfig",
    "CollabModel",
    "CooccurrenceConfig",
    "Factorisation",
    "FactorisationConfig",
    "InteractionLog",
    "blend_with_tags",
    "factorise",
    "learn_cooccurrence",
    "learn_item_vectors",
    "train_collab_model",
]
