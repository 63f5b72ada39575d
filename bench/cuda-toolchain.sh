#!/usr/bin/env bash
# A CUDA toolchain from NVIDIA's PyPI wheels, for `cargo build --features cuda` on a machine with
# no CUDA install and no GPU (Debian, x86-64; needs python3 with venv, a C/C++ compiler and PyPI).
#
#   source bench/cuda-toolchain.sh && cargo build --release -p cutscore-trainer --features cuda
#   bash bench/cuda-toolchain.sh        # the same install, then prints the `export` lines
#
# It installs the CUDA 13.0 wheels into a venv (default bench/.venv-cuda, git-ignored; set
# CUTSCORE_CUDA_VENV to move it; about 650 MB to download, 1.2 GB installed), all of which land in
# one CUDA-shaped folder, site-packages/nvidia/cu13 (bin/nvcc, include, lib, nvvm). Two things the
# wheels lack are added there: unversioned lib*.so links for the linker, and lib/stubs/libcuda.so,
# a stub of the driver library built here from cuda.h (every entry point returns
# CUDA_ERROR_STUB_LIBRARY), because candle 0.11 links cudarc against libcuda, libcudart, libcublas,
# libcublasLt, libcurand and libnvrtc at build time. The built binary needs the real ones at run
# time: the NVIDIA driver's libcuda.so.1 (R580 or newer for CUDA 13.0) and the wheels' libraries
# (LD_LIBRARY_PATH=$CUTSCORE_CUDA_LIB, printed at the end, or the same wheels installed there).
#
# CUDA_COMPUTE_CAP (default 90: an H100/H200; candle turns it into sm_90a) picks the one GPU
# architecture candle's kernels are compiled for; set it before sourcing for another GPU.
# Progress goes to stderr; when run rather than sourced, stdout is only the `export` lines.

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    # Sourced: do the install in a child bash, so that `set -euo pipefail` and any failure stay
    # there, then take its `export` lines into this shell.
    if _cutscore_cuda_env="$(bash "${BASH_SOURCE[0]}")"; then
        eval "$_cutscore_cuda_env"
        unset _cutscore_cuda_env
        return 0
    else
        unset _cutscore_cuda_env
        echo "cuda-toolchain.sh: failed; nothing exported" >&2
        return 1
    fi
fi

set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${CUTSCORE_CUDA_VENV:-$here/.venv-cuda}"
python="${PYTHON:-python3}"
compute_cap="${CUDA_COMPUTE_CAP:-90}"

# CUDA 13.0 throughout: the CUDA 12 nvcc wheels hold only ptxas (no nvcc), and cudarc 0.19.10
# (candle 0.11.1) knows CUDA versions up to 13.4. nvcc's version sets the PTX version, and the
# driver must be at least that new to load candle's PTX kernels, so the oldest 13.x is the pick.
packages=(
    nvidia-cuda-nvcc==13.0.88
    nvidia-nvvm==13.0.88
    nvidia-cuda-crt==13.0.88
    nvidia-cuda-cccl==13.0.85
    nvidia-cuda-runtime==13.0.96
    nvidia-cuda-nvrtc==13.0.88
    nvidia-cublas==13.0.2.14
    nvidia-curand==10.4.0.35
)

say() { echo "cuda-toolchain: $*" >&2; }

for tool in "$python" cc c++; do
    command -v "$tool" >/dev/null || { say "needs $tool (apt-get install python3-venv build-essential)"; exit 1; }
done

stamp="$venv/.cutscore-cuda-packages"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "${packages[*]}" ]]; then
    say "installing ${packages[*]} into $venv"
    [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${packages[@]}" >&2
    echo "${packages[*]}" > "$stamp"
fi

root="$(echo "$venv"/lib/python3*/site-packages/nvidia/cu13)"
[[ -x "$root/bin/nvcc" ]] || { say "no nvcc in $root"; exit 1; }

# The linker looks for libX.so; the wheels ship only libX.so.N.
for lib in "$root"/lib/lib*.so.*; do
    name="$(basename "$lib")"
    link="$root/lib/${name%%.so.*}.so"
    [[ -e "$link" ]] || ln -s "$name" "$link"
done

# A stub libcuda.so (soname libcuda.so.1) like the CUDA toolkit's lib/stubs: every cu* name in
# cuda.h, each returning 34, CUDA_ERROR_STUB_LIBRARY. Only for linking: at run time the driver's
# libcuda.so.1 is found instead, as lib/stubs is never on the loader's path.
stub="$root/lib/stubs/libcuda.so"
if [[ ! -f "$stub" || "$root/include/cuda.h" -nt "$stub" ]]; then
    say "building $stub"
    mkdir -p "$root/lib/stubs"
    grep -oE '\bcu[A-Z][A-Za-z0-9_]*\b' "$root/include/cuda.h" | sort -u \
        | awk '{ print "int " $1 "(void) { return 34; }" }' > "$root/lib/stubs/libcuda-stub.c"
    cc -shared -fPIC -O1 -Wl,-soname,libcuda.so.1 -o "$stub" "$root/lib/stubs/libcuda-stub.c"
fi

say "$("$root/bin/nvcc" --version | tail -2 | head -1)"
say "run the binary on a GPU machine with LD_LIBRARY_PATH=$root/lib (the driver provides libcuda.so.1)"

cat <<EOF
export CUDA_ROOT="$root"
export CUDA_HOME="$root"
export CUDA_PATH="$root"
export NVCC="$root/bin/nvcc"
export PATH="$root/bin:\$PATH"
export CUDA_COMPUTE_CAP="$compute_cap"
export CUTSCORE_CUDA_LIB="$root/lib"
EOF
