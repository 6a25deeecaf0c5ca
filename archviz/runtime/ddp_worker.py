"""One data-parallel worker of ``archviz bench --ddp N``, started by ``torch.distributed.run``.

Reads torchrun's environment (``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, the rendezvous), joins
the process group (``gloo`` on CPU, ``nccl`` on CUDA: one GPU per local rank), wraps the
compiled spec in ``DistributedDataParallel`` and times its training step (the same step as
``bench``: :func:`archviz.runtime.steps.build_step`). Each rank writes ``rank<R>.json`` into
``--out``; a rank that fails writes ``rank<R>.error`` and exits 1, which makes torchrun stop
the others. ``ARCHVIZ_DDP_FAIL_RANK=R`` makes rank R fail on purpose (the tests use it).

Run by hand (what ``bench --ddp 2`` runs)::

    python -m torch.distributed.run --standalone --nproc-per-node 2 \\
        -m archviz.runtime.ddp_worker --spec alexnet --device cpu --batch 8 --out /tmp/ranks
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import traceback
from functools import partial
from pathlib import Path

FAIL_ENV = "ARCHVIZ_DDP_FAIL_RANK"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="archviz.runtime.ddp_worker")
    p.add_argument("--spec", required=True, help="a spec path or bundled name")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--batch", type=int, default=8, help="images per worker per step")
    p.add_argument("--dtype", default="fp32")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--input", default=None, help="C,H,W overriding the spec's input")
    p.add_argument("--lowering", default="", help="how ops with a choice are built, e.g. lrn=torch")
    p.add_argument("--threads", type=int, default=0, help="CPU threads per worker (0: cores / workers)")
    p.add_argument("--out", required=True, help="folder for rank<R>.json")
    return p.parse_args(argv)


def run(args: argparse.Namespace, rank: int, local: int, world: int) -> dict[str, object]:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from ..core.flops import Mode
    from ..ops.lowering import Lowering
    from . import steps
    from .bench_rows import Dtype, Settings, Workload
    from .compile import prepare, to_module
    from .timing import time_iterations

    cuda = args.device == "cuda"
    if cuda:
        torch.cuda.set_device(local)
    else:
        share = (os.cpu_count() or 1) // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", world)))
        torch.set_num_threads(args.threads or max(1, share))
    dist.init_process_group("nccl" if cuda else "gloo")
    if os.environ.get(FAIL_ENV) == str(rank):
        raise RuntimeError(f"rank {rank} failed on purpose ({FAIL_ENV}={rank})")
    shape = tuple(int(v) for v in args.input.split(",")) if args.input else None
    _, analysis = prepare(args.spec, shape)
    torch.manual_seed(0)  # every rank starts from the same weights (DDP also broadcasts rank 0's)
    module = to_module(args.spec, input_shape=shape, lowering=Lowering.parse(args.lowering))
    work = Workload.of(analysis.name, module, analysis)
    dtype = Dtype(args.dtype)
    settings = Settings(device=args.device, batches=(args.batch,), dtypes=(dtype,))
    steps.set_precision(dtype)
    model, x, y = steps.prepare(work, args.batch, settings)
    ddp = DistributedDataParallel(model, device_ids=[local] if cuda else None)
    step = steps.build_step(Mode.train, ddp, x, y, partial(steps.autocast, args.device, dtype))
    time_iterations(step, args.warmup, 0, args.device)
    dist.barrier()
    samples = time_iterations(step, 0, args.iters, args.device)
    dist.barrier()
    ms = statistics.median(samples)
    dist.destroy_process_group()
    return {"rank": rank, "local_rank": local, "world_size": world, "backend": "nccl" if cuda else "gloo",
            "device": f"cuda:{local}" if cuda else "cpu", "batch": args.batch, "dtype": dtype.value,
            "iters": args.iters, "ms": samples, "ms_median": ms, "images_per_s": args.batch / (ms / 1e3),
            "threads": torch.get_num_threads()}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    rank, local = int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0))
    world = int(os.environ.get("WORLD_SIZE", 1))
    out = Path(args.out)
    try:
        record = run(args, rank, local, world)
    except Exception as exc:  # noqa: BLE001 - reported to the launcher through the file
        first = (str(exc).strip().splitlines() or [""])[0]
        (out / f"rank{rank}.error").write_text(f"{type(exc).__name__}: {first}\n{traceback.format_exc()}",
                                                encoding="utf-8")
        return 1
    tmp = out / f".rank{rank}.json.tmp"
    tmp.write_text(json.dumps(record), encoding="utf-8")
    tmp.replace(out / f"rank{rank}.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
