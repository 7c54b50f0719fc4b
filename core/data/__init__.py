"""Data sets by name: `load_dataset("mnist")`, `load_dataset("folder:/path/to/images.zip")`, ...

Importing this package registers every built-in reader. See `base` for the `Dataset` type and errors.
"""
from core.data import cifar, idx, tiny_imagenet, toy  # noqa: F401  (registers the readers)
from core.data.augment import AugmentConfig, augment_batch
from core.data.base import (CorruptDataError, DataError, Dataset, MissingDataError, list_datasets,
                            load_dataset, readable_name, stratified_split)
from core.data.folder import load_image_folder

__all__ = ["AugmentConfig", "augment_batch", "CorruptDataError", "DataError", "Dataset", "MissingDataError",
           "readable_name", "list_datasets", "load_dataset", "stratified_split", "load_image_folder"]
