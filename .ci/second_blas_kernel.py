"""Print an OpenBLAS core type that this CPU runs and that differs from the one in use.

The one in use is OPENBLAS_CORETYPE where the environment sets it, else OpenBLAS's own pick.

`make test` runs the engine tests again under it, so a result that depends on the BLAS
kernel (a prediction, a resumed checkpoint) fails here rather than on a user's machine.
Run with the project's Python: `.venv/bin/python .ci/second_blas_kernel.py`.
"""

import os
import subprocess
import sys
from pathlib import Path

# Core types to try, newest first, with the CPU flags (/proc/cpuinfo) each kernel needs.
CANDIDATES = [
    ("Haswell", {"avx2", "fma"}),
    ("Sandybridge", {"avx"}),
    ("Nehalem", {"sse4_2"}),
    ("Prescott", {"sse3"}),
]
SAME_KERNELS = {"Zen": "Haswell"}  # OpenBLAS runs its Haswell kernels on Zen 1-3

PROBE = (
    "import numpy, threadpoolctl\n"
    "print(next(i['architecture'] for i in threadpoolctl.threadpool_info()"
    " if i['internal_api'] == 'openblas'))"
)


def architecture(coretype: str | None) -> str:
    """The kernel family NumPy's OpenBLAS runs with OPENBLAS_CORETYPE=coretype (None: its pick)."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    if coretype:
        env["OPENBLAS_CORETYPE"] = coretype
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    return probe.stdout.strip()


def cpu_flags() -> set[str]:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def main() -> None:
    own = architecture(os.environ.get("OPENBLAS_CORETYPE"))
    flags = cpu_flags()
    for coretype, needs in CANDIDATES:
        runs_here = needs <= flags and SAME_KERNELS.get(own, own) != coretype
        if runs_here and architecture(coretype) == coretype:  # OpenBLAS honours it
            print(f"OpenBLAS runs {own}; second kernel: {coretype}", file=sys.stderr)
            print(coretype)
            return
    sys.exit(f"no second OpenBLAS kernel runs on this CPU (OpenBLAS runs {own})")


if __name__ == "__main__":
    main()
