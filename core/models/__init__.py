"""Models by name: `build_model("fast_cnn", in_channels=1, image_size=28, num_classes=10)`.

Importing this package registers every built-in architecture.
"""
from core.models import autoencoders, captioner, classifiers, multidigit, pretrained  # noqa: F401  (registers the architectures)
from core.models.registry import (build_model, count_parameters, evaluating, list_models, parameter_count,
                                  register_model)

__all__ = ["build_model", "count_parameters", "evaluating", "list_models", "parameter_count", "register_model"]
