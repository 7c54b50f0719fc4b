"""The engine every model trains through, and its checkpoint format.

`fit` (the loop, `fit.py`, with its settings `config.py`, device helpers `device.py` and weight averages
`averaging.py`) with its events, Task contract and controls (`events.py`); the `Recipe` base class and the
registry of model kinds (`recipe.py`), `run` (`run.py`, the one way from a recipe to a saved model), a
recipe's command-line flags and replay command (`flags.py`), its settings check (`settings.py`) and Trainer
form (`form.py`); the loaders (`loaders.py`), optimizers and schedules (`optim.py`), the resumable state
(`resume.py`), the classification task and input normalisation (`tasks.py`), single-image and batched
prediction (`predict.py`) and the checkpoint with its typed model card (`checkpoint/`). The model kinds
(`core.classifier`, `core.latent`, ...) build on these; nothing here imports a kind.
"""
from core.engine.config import TrainConfig
from core.engine.device import NAN_ADVICE, seed_everything, select_device
from core.engine.events import (EndEvent, EpochEvent, EvalEvent, Event, MonitorEvent, PrepareEvent, RunControl,
                                StepEvent, StoppedWhilePreparing, Task, WarningEvent)
from core.engine.fit import FitResult, evaluate, fit
from core.engine.loaders import ComposedLoader, TensorLoader

__all__ = ["NAN_ADVICE", "ComposedLoader", "EndEvent", "EpochEvent", "EvalEvent", "Event", "FitResult", "MonitorEvent",
           "PrepareEvent", "RunControl", "StepEvent", "StoppedWhilePreparing", "Task", "TensorLoader", "TrainConfig",
           "WarningEvent", "evaluate", "fit", "seed_everything", "select_device"]
