"""``python -m textflow.bench NAME [options]``: run one benchmark, print its table, write JSON.

Benchmarks: ``judge`` (judge-LM scoring cost), ``sampling`` (sampler tokens/s vs K on a checkpoint) and
``diagnostics`` (the training diagnostics callback's share of training time) and ``vocab`` (training step
and diagnostics across vocabulary sizes, 4 k to 128 k) and ``matched`` (tokens/s of each sampler family at
its AR twin's quality, from a sweep's report) and ``ddp`` (data-parallel training scaling) and
``parallel-sampling`` (N independent sampling processes: flow and AR tokens/s and efficiency) and ``train`` (training
tokens/s and model-FLOPs utilisation against a measured matmul peak) and ``peer`` (the Euler ODE against
torchdiffeq on the same work) and ``scaling`` (few-step flow vs a KV-cached AR model over length and K) and
``calibrate`` (the CPU inference paths timed again beside this machine's stored choice).

"""

from __future__ import annotations

import argparse
import sys

from textflow.allocator import keep_freed_memory
from textflow.cli import guarded
from textflow.bench.runner import print_table, write_result
from textflow.io import default_cache_dir
from textflow.kernels.linear import BACKENDS


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m textflow.bench", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="name", required=True)
    judge = sub.add_parser("judge", help="score N samples of L tokens with the judge LM")
    judge.add_argument("--num-samples", type=int, default=64)
    judge.add_argument("--tokens", type=int, default=128)
    judge.add_argument("--judge", default="smollm2")
    judge.add_argument("--batch-size", type=int, default=16)
    judge.add_argument("--repeats", type=int, default=3)
    sampling = sub.add_parser("sampling", help="tokens/s of samplers at several K on a checkpoint")
    sampling.add_argument("--ckpt", required=True)
    sampling.add_argument("--samplers", default="ode,sde,commit",
                          help="registry names, each with optional knobs: ode,adaptive:levels=16:gamma=0.5")
    sampling.add_argument("--steps", default="1,4,32")
    sampling.add_argument("--batch-size", type=int, default=32)
    sampling.add_argument("--repeats", type=int, default=3)
    sampling.add_argument("--compile", action="store_true", help="torch.compile the backbone (untimed first call)")
    sampling.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    sampling.add_argument("--bf16", action="store_true", help="bf16 autocast, as sample.py precision=bf16 (CUDA)")
    sampling.add_argument("--cpu-linear", choices=list(BACKENDS), default=None,
                          help="CPU inference linears: oneDNN's GEMM, PyTorch's GEMM with the exp2 GELU (mkl), or "
                               "PyTorch's own path (default: TEXTFLOW_CPU_LINEAR, else this machine's calibration)")
    calibrate = sub.add_parser("calibrate", help="CPU inference paths timed again beside the stored choice")
    calibrate.add_argument("--rounds", type=int, default=9, help="rounds per measurement (the calibration's)")
    calibrate.add_argument("--repeats", type=int, default=3, help="measurements, pooled by their medians")
    calibrate.add_argument("--store", action="store_true", help="replace this machine's stored choice")
    calibrate.add_argument("--out", default="outputs/bench")  # the choice itself lives in TEXTFLOW_CACHE
    diag = sub.add_parser("diagnostics", help="cost of the training diagnostics callback vs training")
    diag.add_argument("--ckpt", required=True)
    diag.add_argument("--interval", type=int, default=200, help="validation interval in training steps")
    diag.add_argument("--blocks", type=int, default=16)
    diag.add_argument("--repeats", type=int, default=3)
    vocab = sub.add_parser("vocab", help="training step and training diagnostics across vocabulary sizes")
    vocab.add_argument("--vocabs", default="4096,50257,131072")
    vocab.add_argument("--preset", default="dit_tiny")
    vocab.add_argument("--batch", type=int, default=16)
    vocab.add_argument("--seq-len", type=int, default=64)
    vocab.add_argument("--blocks", type=int, default=16)
    vocab.add_argument("--interval", type=int, default=200, help="validation interval in training steps")
    vocab.add_argument("--repeats", type=int, default=3)
    vocab.add_argument("--override", action="append", default=[], help="extra train.yaml override (repeatable)")
    matched = sub.add_parser("matched", help="tokens/s of each sampler family at its AR twin's quality")
    matched.add_argument("--report", action="append", required=True,
                         help="report.csv of a sample.py -m sweep (repeatable; one run with ar_twin=)")
    matched.add_argument("--batch-size", type=int, default=32)
    matched.add_argument("--repeats", type=int, default=3)
    matched.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto (both models and the twin's draws)")
    matched.add_argument("--entropy-tolerance", type=float, default=0.3,
                         help="a match needs unigram entropy within this many nats of held-out text's")
    train = sub.add_parser("train", help="training tokens/s and MFU through the Lightning loop")
    train.add_argument("--preset", default="dit_small")
    train.add_argument("--steps", type=int, default=30)
    train.add_argument("--batch", type=int, default=64)
    train.add_argument("--seq-len", type=int, default=64)
    train.add_argument("--override", action="append", default=[], help="extra train.yaml override (repeatable)")
    train.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    train.add_argument("--precision", default="32-true", help="Lightning precision: 32-true | bf16-mixed")
    train.add_argument("--compile", action="store_true", help="torch.compile the backbone")
    train.add_argument("--devices", type=int, default=1, help="processes (> 1: Lightning DDP; gloo on a CPU)")
    ddp = sub.add_parser("ddp", help="data-parallel training scaling: bench train at 1..N processes")
    ddp.add_argument("--devices", default="1,2")
    ddp.add_argument("--preset", default="dit_base")
    ddp.add_argument("--steps", type=int, default=20)
    ddp.add_argument("--batch", type=int, default=16, help="per process")
    ddp.add_argument("--seq-len", type=int, default=64)
    ddp.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ddp.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ddp.add_argument("--override", action="append", default=[], help="extra train.yaml override (repeatable)")
    par = sub.add_parser("parallel-sampling", help="data-parallel sampling: 1..N independent sampling processes")
    par.add_argument("--devices", default="1,2")
    par.add_argument("--preset", default="dit_small", help="a conf/backbone preset: width, depth, heads")
    par.add_argument("--k", type=int, default=4, help="the flow's ODE steps")
    par.add_argument("--batch", type=int, default=32, help="per process")
    par.add_argument("--seq-len", type=int, default=64)
    par.add_argument("--threads", type=int, default=1, help="torch threads per process")
    par.add_argument("--repeats", type=int, default=3)
    par.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    peer = sub.add_parser("peer", help="Euler ODE vs torchdiffeq.odeint(method='euler') on the same work")
    peer.add_argument("--ckpt", required=True)
    peer.add_argument("--steps", default="4,32")
    peer.add_argument("--batch-size", type=int, default=32)
    peer.add_argument("--repeats", type=int, default=5)
    scaling = sub.add_parser("scaling", help="flow (ode, K steps) vs KV-cached AR tokens/s over length and K")
    scaling.add_argument("--lengths", default="64,128,256,512,1024")
    scaling.add_argument("--steps", default="1,4,8,16,32")
    scaling.add_argument("--batch-size", type=int, default=32)
    scaling.add_argument("--width", type=int, default=256)
    scaling.add_argument("--depth", type=int, default=4)
    scaling.add_argument("--heads", type=int, default=4)
    scaling.add_argument("--repeats", type=int, default=3)
    scaling.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    scaling.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA)")
    scaling.add_argument("--compile", action="store_true", help="torch.compile the flow's backbone")
    for p in (judge, sampling, diag, vocab, matched, train, ddp, par, peer, scaling):
        p.add_argument("--out", default="outputs/bench")
        p.add_argument("--cache-dir", default=str(default_cache_dir()))
    args = parser.parse_args(argv)
    settings = {k: v for k, v in vars(args).items() if k not in ("out",)}
    figure = None  # a benchmark whose rows read better as a picture: drawn beside its JSON
    if args.name == "judge":
        from textflow.bench import judge as bench

        rows = bench.run(num_samples=args.num_samples, tokens=args.tokens, judge=args.judge,
                         batch_size=args.batch_size, cache_dir=args.cache_dir, repeats=args.repeats)
    elif args.name == "train":
        from pathlib import Path

        from textflow.bench import train as bench

        conf = str(Path(__file__).resolve().parents[2] / "conf")
        rows = bench.run(preset=args.preset, steps=args.steps, batch=args.batch, seq_len=args.seq_len, conf_dir=conf,
                         cache_dir=args.cache_dir, overrides=args.override, device=args.device,
                         precision=args.precision, compile=args.compile, devices=args.devices)
    elif args.name == "ddp":
        from textflow.bench import ddp as bench

        rows = bench.run(devices=[int(d) for d in args.devices.split(",")], preset=args.preset, steps=args.steps,
                         batch=args.batch, seq_len=args.seq_len, threads=args.threads, device=args.device,
                         overrides=args.override, cache_dir=args.cache_dir)
    elif args.name == "vocab":
        from pathlib import Path

        from textflow.bench import vocab as bench

        conf = str(Path(__file__).resolve().parents[2] / "conf")
        rows = bench.run(conf_dir=conf, vocabs=[int(v) for v in args.vocabs.split(",")], preset=args.preset,
                         batch=args.batch, seq_len=args.seq_len, blocks=args.blocks, interval=args.interval,
                         repeats=args.repeats, overrides=args.override)
    elif args.name == "matched":
        from textflow.bench import matched as bench

        rows = bench.run(reports=args.report, batch_size=args.batch_size, repeats=args.repeats,
                         entropy_tolerance=args.entropy_tolerance, device=args.device)
        figure = bench.plot
    elif args.name == "parallel-sampling":
        from textflow.bench import parallel_sampling as bench

        rows = bench.run(devices=[int(d) for d in args.devices.split(",")], preset=args.preset, k=args.k,
                         batch=args.batch, seq_len=args.seq_len, threads=args.threads, repeats=args.repeats,
                         device=args.device)
    elif args.name == "peer":
        from textflow.bench import peer as bench

        rows = bench.run(ckpt=args.ckpt, steps=[int(k) for k in args.steps.split(",")], batch_size=args.batch_size,
                         repeats=args.repeats)
    elif args.name == "scaling":
        from textflow.bench import scaling as bench

        rows = bench.run(lengths=[int(x) for x in args.lengths.split(",")], steps=[int(k) for k in args.steps.split(",")],
                         batch_size=args.batch_size, width=args.width, depth=args.depth, heads=args.heads,
                         repeats=args.repeats, device=args.device, bf16=args.bf16, compile=args.compile,
                         out_dir=args.out)
    elif args.name == "calibrate":
        from textflow.bench import calibrate as bench

        rows = bench.run(rounds=args.rounds, repeats=args.repeats, store=args.store)
    elif args.name == "diagnostics":
        from textflow.bench import diagnostics as bench

        rows = bench.run(ckpt=args.ckpt, interval=args.interval, blocks=args.blocks, repeats=args.repeats)
    else:
        from textflow.bench import sampling as bench

        rows = bench.run(ckpt=args.ckpt, samplers=args.samplers.split(","),
                         steps=[int(k) for k in args.steps.split(",")], batch_size=args.batch_size,
                         repeats=args.repeats, compile=args.compile, device=args.device, bf16=args.bf16,
                         cpu_linear=args.cpu_linear)
    if not rows:  # a DDP worker (not the global rank): rank 0 reports
        return
    print_table(rows)
    path = write_result(args.name, rows, args.out, settings)
    print(f"wrote {path}", file=sys.stderr)
    if figure is not None:
        print(f"wrote {figure(rows, path.with_suffix('.png'))}", file=sys.stderr)


if __name__ == "__main__":
    keep_freed_memory()  # as train.py and sample.py do (textflow/allocator.py)
    guarded(main, None)  # a bad checkpoint or value: one line, exit status 2
