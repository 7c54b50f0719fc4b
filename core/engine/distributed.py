"""Data-parallel training across processes and machines, when launched by `torchrun`.

    torchrun --nproc_per_node=2 -m core train --dataset mnist --model fast_cnn --out runs/ddp
    torchrun --nnodes=2 --node_rank=0 --rdzv_endpoint=HOST:29400 --nproc_per_node=8 -m core train ...

torchrun sets RANK / WORLD_SIZE / MASTER_ADDR in each process; `setup()` then joins the process group (gloo
on CPU, NCCL on GPUs). Every rank builds the same model and the same seeded batch order; `Shard` gives each
rank its slice of every global batch (so the global batch, and the learning rate that goes with it, are
those of a one-process run), `DistributedDataParallel` averages the gradients, epoch metrics are summed
across ranks, and a stop, a NaN or a time budget on any rank stops them all at the same step. Only rank 0
reports progress and writes events, checkpoints and the card. Without torchrun all of this is a no-op.
"""
from __future__ import annotations

import os

import torch


def torchrun(processes: int) -> list[str]:
    """The arguments that start `processes` ranks of a module on this machine (`python -m torch.distributed.run`)."""
    return ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]


def launched() -> bool:
    """Whether this process is one of several started by torchrun."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def setup() -> bool:
    """Join the process group if torchrun started this process (once); returns whether training is distributed."""
    if not launched():
        return False
    if not active():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        torch.distributed.init_process_group(backend)
    return True


def rank() -> int:
    return torch.distributed.get_rank() if active() else 0


def world_size() -> int:
    return torch.distributed.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0, or the only process: the one that reports and writes."""
    return rank() == 0 if active() else int(os.environ.get("RANK", "0")) == 0


def any_rank(flag: bool) -> bool:
    """True on every rank if `flag` is true on any (a stop, a NaN, a spent time budget)."""
    if not active():
        return flag
    t = torch.tensor([1.0 if flag else 0.0])
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return bool(t.item() > 0)


def from_main(value: float | None) -> float | None:
    """Rank 0's value (a learning rate the user set, or None) on every rank."""
    if not active():
        return value
    t = torch.tensor([-1.0 if value is None else float(value)], dtype=torch.float64)
    torch.distributed.broadcast(t, src=0)
    return None if t.item() < 0 else float(t.item())


def summed(values: dict[str, float]) -> dict[str, float]:
    """Each value summed over the ranks (for averages: sum the numerators and the counts)."""
    if not active() or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    torch.distributed.all_reduce(t)
    return dict(zip(keys, t.tolist()))


class Shard:
    """Rank r's part of every batch of `loader`: rows r, r + world, r + 2 world, ... (the same global batches,
    in the same seeded order, as one process would see). `generator` is the inner loader's, for the engine's
    reseeding and the resume state."""

    def __init__(self, loader, rank: int, world: int):
        self.loader, self.rank, self.world = loader, rank, world

    @property
    def generator(self):
        return self.loader.generator

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            part = tuple(t[self.rank::self.world] for t in batch)
            if len(part[0]) == 0:  # a last batch smaller than the number of ranks
                part = tuple(t[-1:] for t in batch)
            yield part
