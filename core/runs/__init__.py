"""The run service: background runs of any model kind, their folders, and what the Trainer says about them.

`service` starts, stops, re-rates, resumes and reaps runs; `folder` reads and writes what a run leaves on
disk; `worker` is the process that trains them; `report` turns a run into the Trainer's words, tables and
figures. Nothing here imports a model kind: a run's recipe class, found in the registry by its spec.json,
answers every question about its kind.
"""
from core.runs.folder import read_events, read_group, read_recipe, read_spec, summarize
from core.runs.service import (Busy, active_run, can_resume, create_run, list_runs, read_status, request_stop,
                               resume_run, set_learning_rate, start_run, start_runs, uploaded_datasets, uploads_dir,
                               wait)

__all__ = ["Busy", "active_run", "can_resume", "create_run", "list_runs", "read_events", "read_group", "read_recipe",
           "read_spec", "read_status", "request_stop", "resume_run", "set_learning_rate", "start_run",
           "start_runs", "summarize", "uploaded_datasets", "uploads_dir", "wait"]
