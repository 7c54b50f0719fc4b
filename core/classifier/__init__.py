"""The classifier kind: `ClassifierRecipe` (registered as "classifier", trained by `python -m core train`), its
evaluation, k-fold cross-validation, transfer learning from a pretrained backbone, speed recipes, Trainer presets
and form, and its other verbs. Importing the package registers the kind and its verbs."""
from core.classifier import presets, verbs  # noqa: F401  (registers the Trainer's presets and the verbs)
from core.classifier.recipe import ClassifierRecipe

__all__ = ["ClassifierRecipe"]
