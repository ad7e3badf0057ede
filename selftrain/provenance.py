"""Where a result comes from: package versions, code version, machine."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "selftrain",
    "tensorflow",
    "keras",
    "numpy",
    "scipy",
    "scikit-learn",
    "pandas",
    "matplotlib",
    "jinja2",
    "weasyprint",
    "snakemake",
)


def package_versions(packages=PACKAGES) -> dict[str, str]:
    """Return the installed version of each package ("not installed" if absent)."""
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(folder: str | os.PathLike) -> str:
    """Return the commit checked out in ``folder``, marked ``+changes`` if dirty."""

    def git(*args):
        return subprocess.run(
            ["git", "-C", str(folder), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return commit + ("+changes" if dirty else "")


def cpu_model() -> str:
    """Return the CPU's model name, or the architecture where it is unknown."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def machine() -> str:
    """Describe this machine in one line: CPU, cores, memory, system."""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / 2**30:.0f} GiB"
    except (ValueError, OSError):
        memory = ""
    return f"{cpu_model()}, {os.cpu_count()} cores{memory}, {platform.platform()}"


# The instruction sets that decide how fast TensorFlow runs on a CPU.
CPU_FEATURES = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")


def cpu_features() -> str:
    """Return which of ``CPU_FEATURES`` this CPU has, as one line."""
    from selftrain.model import cpu_flags

    flags = cpu_flags()
    present = [f for f in CPU_FEATURES if f in flags]
    return ", ".join(present) or "none of " + ", ".join(CPU_FEATURES)


def _requirement_name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ]", requirement.strip(), maxsplit=1)[0].lower()


def declared_packages(repository: str | os.PathLike) -> tuple[set[str], set[str]]:
    """Return the packages named by ``pyproject.toml`` and ``environment.yml``.

    From pyproject: the dependencies and the ``dev`` extra; from the conda
    environment: its dependencies other than ``python`` and ``pip``.
    """
    import tomllib

    import yaml

    repository = Path(repository)
    project = tomllib.loads((repository / "pyproject.toml").read_text())["project"]
    pip = {_requirement_name(r) for r in project["dependencies"]}
    pip |= {_requirement_name(r) for r in project["optional-dependencies"]["dev"]}
    environment = yaml.safe_load((repository / "environment.yml").read_text())
    conda = {
        _requirement_name(d) for d in environment["dependencies"] if isinstance(d, str)
    }
    return pip, conda - {"python", "pip"}


def environment_check(repository: str | os.PathLike) -> str:
    """Say whether environment.yml and pyproject.toml name the same packages."""
    try:
        pip, conda = declared_packages(repository)
    except (OSError, KeyError, ValueError) as error:
        return f"not checked ({error})"
    if pip == conda:
        return f"environment.yml and pyproject.toml name the same {len(pip)} packages"
    differ = ", ".join(sorted(pip ^ conda))
    return f"environment.yml and pyproject.toml differ: {differ}"
