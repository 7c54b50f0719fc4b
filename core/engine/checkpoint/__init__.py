"""Checkpoints: the typed model card (`card`), the tasks it may have (`tasks`) and the files it describes (`store`).

A checkpoint is a folder with `model.safetensors` and `card.json`. Everything that reads or writes one
goes through the names exported here; nothing else parses a card.json or writes one.
"""
from core.engine.checkpoint.card import (FORMAT, SCHEMA_VERSION, CheckpointError, DatasetInfo, Headline, ModelCard,
                                         ModelSpec, card_from_dict, headline_of)
from core.engine.checkpoint.store import (CARD, SNAPSHOTS, WEIGHTS, check_finite, invoking_command, list_checkpoints,
                                          list_snapshots, load_checkpoint, load_snapshot, read_card, resolve,
                                          save_checkpoint, save_snapshot, spec_of, update_card, write_card)
from core.engine.checkpoint.tasks import TASKS, register_task

__all__ = ["CARD", "FORMAT", "SCHEMA_VERSION", "SNAPSHOTS", "TASKS", "WEIGHTS", "CheckpointError", "DatasetInfo",
           "Headline", "ModelCard", "ModelSpec", "card_from_dict", "check_finite", "headline_of", "invoking_command",
           "list_checkpoints", "list_snapshots", "load_checkpoint", "load_snapshot", "read_card", "register_task",
           "resolve", "save_checkpoint", "save_snapshot", "spec_of", "update_card", "write_card"]
