"""The engine every model trains through, and its checkpoint format.

`fit` (the loop, `fit.py`) with its events, Task contract and controls (`events.py`), recipes and `run`
(`recipe.py`), the loaders (`loaders.py`), optimizers and
schedules (`optim.py`), the resumable state (`resume.py`), the classification task and input
normalisation (`tasks.py`), single-image and batched prediction (`predict.py`) and the checkpoint with
its typed model card (`checkpoint/`). Features (`core.trainer`, `core.latent`, ...) build on these;
nothing here imports a feature.
"""
from core.engine.events import (EndEvent, EpochEvent, EvalEvent, Event, PrepareEvent, RunControl, StepEvent, Task,
                                WarningEvent)
from core.engine.fit import (NAN_ADVICE, FitResult, TrainConfig, WeightAverage, evaluate, fit, seed_everything,
                             select_device)
from core.engine.loaders import ComposedLoader, TensorLoader

__all__ = ["NAN_ADVICE", "ComposedLoader", "EndEvent", "EpochEvent", "EvalEvent", "Event", "FitResult", "PrepareEvent",
           "WarningEvent", "RunControl", "StepEvent", "Task", "TensorLoader", "TrainConfig", "WeightAverage", "evaluate", "fit",
           "seed_everything", "select_device"]
