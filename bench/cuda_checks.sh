#!/usr/bin/env bash
# The checks a machine with an NVIDIA GPU can make that CI cannot: the `cuda` tests (reward
# model and beat network on CUDA against the CPU), the reward model on CUDA against PyTorch on
# CUDA, and the beat network's training steps on CUDA against the CPU. The README's "On an NVIDIA
# GPU" figures were measured with these steps (about 4 minutes on an H200 with 16 CPU cores).
#
#   bench/cuda_checks.sh LOG [BIN_DIR]
#
# BIN_DIR holds `trainer` (built with --features cuda), `test-reward` and `test-training` (the
# `cuda` test binaries of cutscore-reward and cutscore-training); build them where the CUDA
# toolchain is (README: `source bench/cuda-toolchain.sh`), e.g.
#   cargo build --release -p cutscore-trainer --features cuda
#   cargo test --release --features cutscore-reward/cuda,cutscore-training/cuda \
#       -p cutscore-reward -p cutscore-training --test cuda --no-run
# and copy the two executables it names. Without BIN_DIR, target/release/trainer is used and the
# tests are built and run by cargo. The CUDA 13 libraries must be on LD_LIBRARY_PATH (a PyTorch
# built for CUDA 13 carries them: its site-packages/nvidia/cu13/lib); PyTorch with CUDA must be
# importable by python3; the reference is ../shared/bench/torch_reward_model.py unless
# TORCH_SCRIPT names it.
set -u
log="${1:?usage: bench/cuda_checks.sh LOG [BIN_DIR]}"
bin="${2:-}"
cd "$(dirname "$0")/.."
exec > >(tee "$log") 2>&1
step() { echo; echo "=== $* ($(date +%T))"; }
trainer="${bin:-target/release}/trainer"
torch_script="${TORCH_SCRIPT:-../shared/bench/torch_reward_model.py}"

step machine
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
echo "$(nproc) CPU threads"
"$trainer" info 2>&1 | grep -E "^device"

step "tests: reward model and beat network, CUDA against the CPU"
if [[ -n "$bin" ]]; then
    "$bin/test-reward" --test-threads 1 2>&1 | tail -6
    "$bin/test-training" --test-threads 1 2>&1 | tail -6
else
    cargo test --release --features cutscore-reward/cuda,cutscore-training/cuda \
        -p cutscore-reward -p cutscore-training --test cuda -- --test-threads 1 2>&1 | tail -12
fi

step "reward model: trainer bench on CUDA against PyTorch on CUDA"
python3 bench/compare_torch.py --device cuda --rounds 3 --trainer "$trainer" \
    --torch-script "$torch_script" --shape 32x128 --shape 256x16 --shape 1024x16 --shape 256x128

step "reward model: the same on all CPU threads"
python3 bench/compare_torch.py --device cpu --rounds 1 --threads "$(nproc)" --trainer "$trainer" \
    --torch-script "$torch_script" --shape 32x128 --shape 256x16

step "beat network: 300 training steps of 8 excerpts x 640 frames"
cache="$(mktemp -d)"
beats() { # DEVICE CHANNELS
    local start
    start=$(date +%s%N)
    "$trainer" beats train --synth 12 --seed 4000 --cache "$cache" --steps 300 --eval-every 300 \
        --excerpt 640 --batch 8 --device "$1" --channels "$2" --out "$cache/$1-$2.safetensors" \
        > "$cache/$1-$2.log" 2>&1
    echo "$1, $2 channels: exit $?, $(( ($(date +%s%N) - start) / 1000000 )) ms"
    grep -E "^step|^wrote|error" "$cache/$1-$2.log" | tail -3
}
beats cuda 32 > /dev/null # renders and caches the songs
for run in "cuda 32" "cuda 64" "cpu 32" "cpu 64"; do
    # shellcheck disable=SC2086
    beats $run
done
rm -rf "$cache"
step done
