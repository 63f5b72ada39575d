"""Times Cutscore's reward model (candle, `trainer bench`) and its PyTorch reference side by side
in one run and prints the ratios (issue #19's table): inference and a Bradley-Terry + AdamW
training step at the shapes the plugin and the trainer use.

The two sides alternate round by round, so both see the same machine load; each round's figure
is the median of that side's own timed runs, and the table shows the median over rounds.

Set-up (PyTorch is for comparison only and never shipped):
    python3 -m venv bench/.venv-torch && bench/.venv-torch/bin/pip install torch numpy
    cargo build --release -p cutscore-trainer
Usage:
    bench/.venv-torch/bin/python bench/compare_torch.py [--rounds 3] [--threads 2]
        [--shape 32x128 --shape 256x16] [--trainer target/release/trainer]
        [--torch-script ../shared/bench/torch_reward_model.py] [--device cpu|cuda]

`--device cuda` times both on the GPU: a trainer built with `--features cuda` (README) and the
reference's model class on `cuda`, with the same warm-ups and runs as its CPU timing and
`torch.cuda.synchronize()` around each timed call (the reference script itself times the CPU
only).
"""
import argparse
import importlib.util
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def time_candle(trainer, batch, beats, threads, device="cpu"):
    """Median inference and training-step milliseconds of `trainer bench` on `device`."""
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    out = subprocess.run(
        [trainer, "bench", "--device", device, "--batch", str(batch), "--beats", str(beats),
         "--runs", "5", "--json"],
        check=True, capture_output=True, text=True, env=env,
    ).stdout
    line = json.loads(out.strip().splitlines()[-1])
    return line["inference_ms"], line["train_step_ms"]


def time_torch(script, batch, beats, threads):
    """Median inference and training-step milliseconds of the PyTorch reference."""
    out = subprocess.run(
        [sys.executable, script, str(batch), str(beats), str(threads)],
        check=True, capture_output=True, text=True,
    ).stdout
    found = re.search(r"inference_ms=([\d.]+) .*train_step_ms\(pairs=\d+\)=([\d.]+)", out)
    if not found:
        sys.exit(f"unexpected output from {script}:\n{out}")
    return float(found.group(1)), float(found.group(2))


def time_torch_cuda(script, batch, beats):
    """The reference's model on the GPU: median inference and training-step milliseconds, with
    its CPU timing's warm-ups, runs, inputs and optimiser, each timed call synchronised."""
    import torch
    spec = importlib.util.spec_from_file_location("torch_reward_model", script)
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    torch.manual_seed(0)
    model = reference.RewardModel().cuda()
    x = torch.randn(batch, beats, 125, device="cuda")

    def median_ms(f, warmup, runs):
        for _ in range(warmup):
            f()
        times = []
        for _ in range(runs):
            torch.cuda.synchronize()
            start = time.perf_counter()
            f()
            torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1e3

    model.eval()
    with torch.inference_mode():
        inference = median_ms(lambda: model(x), 3, 10)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    xa = torch.randn(batch, beats, 125, device="cuda")
    xb = torch.randn(batch, beats, 125, device="cuda")

    def step():
        optimizer.zero_grad()
        loss = -torch.nn.functional.logsigmoid(model(xa) - model(xb)).mean()
        loss.backward()
        optimizer.step()

    return inference, median_ms(step, 2, 5)


def shape(text):
    batch, beats = text.lower().split("x")
    return int(batch), int(beats)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--shape", type=shape, action="append",
                        help="BATCHxBEATS (default 32x128 and 256x16)")
    parser.add_argument("--trainer", default=str(ROOT / "target/release/trainer"))
    parser.add_argument("--torch-script",
                        default=str(ROOT.parent / "shared/bench/torch_reward_model.py"))
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()
    shapes = args.shape or [(32, 128), (256, 16)]
    for path, what in [(args.trainer, "cargo build --release -p cutscore-trainer"),
                       (args.torch_script, "the PyTorch reference script")]:
        if not Path(path).exists():
            sys.exit(f"{path} does not exist: {what} is needed")
    try:
        import torch  # the reference runs under this interpreter
    except ImportError:
        sys.exit("PyTorch is not installed for this Python; see the set-up in this script's header")
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: PyTorch sees no GPU")

    rows = []
    for batch, beats in shapes:
        c_inf, c_train, t_inf, t_train = [], [], [], []
        for round_ in range(args.rounds):
            ci, ct = time_candle(args.trainer, batch, beats, args.threads, args.device)
            if args.device == "cuda":
                ti, tt = time_torch_cuda(args.torch_script, batch, beats)
            else:
                ti, tt = time_torch(args.torch_script, batch, beats, args.threads)
            c_inf.append(ci); c_train.append(ct); t_inf.append(ti); t_train.append(tt)
            print(f"{batch}x{beats} round {round_ + 1}: candle {ci:.1f} / {ct:.1f} ms, "
                  f"torch {ti:.1f} / {tt:.1f} ms", file=sys.stderr)
        rows.append((f"inference, {batch} x {beats} beats", statistics.median(c_inf),
                     statistics.median(t_inf)))
        rows.append((f"training step, {batch} pairs x {beats} beats",
                     statistics.median(c_train), statistics.median(t_train)))

    where = (f"on {torch.cuda.get_device_name()}" if args.device == "cuda"
             else f"{args.threads} threads")
    print(f"candle (trainer bench) vs PyTorch {torch.__version__}, {where}, "
          f"medians of {args.rounds} alternating rounds")
    print("| shape | candle | PyTorch | ratio |")
    print("|---|---:|---:|---:|")
    for name, c, t in rows:
        print(f"| {name} | {c:,.0f} ms | {t:,.0f} ms | {c / t:.2f} |")


if __name__ == "__main__":
    main()
