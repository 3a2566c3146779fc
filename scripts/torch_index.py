"""Which index `make setup` installs torch from: the CPU-only wheel index where it helps and can be reached.

Prints the index URL (or nothing: PyPI) on stdout and, on stderr, one line saying which build and why.
On Linux, PyPI's torch is the CUDA build (several GB); the study needs only the CPU, so the CPU-only
index is used when it answers within ``--timeout`` seconds, else PyPI (the fallback says so). On macOS
and Windows PyPI's torch is already the CPU build. Standard library only: it runs before anything is
installed.

    python scripts/torch_index.py [--timeout S]
"""

from __future__ import annotations

import argparse
import platform
import sys
import urllib.error
import urllib.request

#: PyTorch's CPU-only wheel index (https://pytorch.org/get-started/locally/)
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def choose(system: str, reachable) -> tuple[str, str]:
    """``(index URL or "", the sentence saying which build)`` for the OS ``system``; ``reachable()`` is
    ``None`` when the CPU index answers, else why not."""
    if system != "Linux":
        return "", f"torch: PyPI's build (on {system} it is the CPU build)"
    why = reachable()
    if why is None:
        return CPU_INDEX, f"torch: the CPU-only build from {CPU_INDEX}"
    return (
        "",
        f"torch: PyPI's build, the CUDA one (several GB): the CPU-only index {CPU_INDEX} is not reachable ({why})",
    )


def _probe(timeout_s: float):
    def reachable() -> str | None:
        try:
            with urllib.request.urlopen(f"{CPU_INDEX}/torch/", timeout=timeout_s) as response:
                return None if response.status == 200 else f"HTTP {response.status}"
        except (urllib.error.URLError, OSError) as exc:
            return str(getattr(exc, "reason", exc))

    return reachable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the CPU index [s]")
    args = parser.parse_args(argv)
    index, said = choose(platform.system(), _probe(args.timeout))
    print(said, file=sys.stderr)
    print(index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
