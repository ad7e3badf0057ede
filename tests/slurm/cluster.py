"""A one-node SLURM cluster on this machine, started and stopped by a test.

munged, slurmctld and slurmd run in the foreground as children of the test
process, with every file (config, key, state, spool, logs) under one folder
and their own ports and munge socket. They are asked to die with the process
that started them, so not even a killed test run leaves them behind.

One thing lives outside that folder: the link ``/run/slurm/conf`` to it.
Programs find the cluster through ``SLURM_CONF``, but the executor plugin's
job step removes every ``SLURM_*`` variable before it calls ``srun`` inside a
job, and srun then looks in /etc/slurm/slurm.conf and in /run/slurm/conf/, the
place where a configless slurmd keeps its copy. The link is removed on stop.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scontrol", "scancel", "srun")
TRAINING_PARTITION = "training"
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
RUN_CONF = Path("/run/slurm/conf")
PREFIX = "selftrain-slurm-"  # of the folders LocalSlurm works in


def unusable() -> str | None:
    """Why a test cluster cannot run on this machine, or None if it can."""
    missing = [name for name in (*DAEMONS, *CLIENTS) if shutil.which(name) is None]
    if missing:
        return (
            f"SLURM is not installed ({', '.join(missing)} not found); "
            "apt-get install slurm-wlm munge, as .ci/run does"
        )
    if os.geteuid() != 0:
        return "starting munged and slurmd for the test needs root"
    if SYSTEM_CONF.exists():
        return f"{SYSTEM_CONF} exists: srun inside a test job would use that SLURM"
    if (RUN_CONF.exists() or RUN_CONF.is_symlink()) and not _is_ours(RUN_CONF):
        return f"{RUN_CONF} exists: srun inside a test job would use that SLURM"
    return None


def _is_ours(path: Path) -> bool:
    return path.is_symlink() and os.readlink(path).startswith(
        os.path.join(os.sep, "tmp", PREFIX)
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _die_with_parent() -> None:
    """Have the kernel send SIGTERM to this child when its parent exits."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


class LocalSlurm:
    """munged, slurmctld and slurmd for one node, all files under ``root``.

    Parameters
    ----------
    root : Path
        An empty folder in /tmp whose name starts with ``PREFIX``. munged
        needs every folder above its socket to be searchable by all users.
    """

    def __init__(self, root: Path):
        self.root = Path(root)
        self.host = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, timeout: float = 30.0) -> None:
        """Write the config and key, start the daemons, wait for an idle node.

        Raises
        ------
        RuntimeError
            When a daemon exits or the node is not idle within ``timeout``
            seconds; the message ends with the daemons' logs.
        """
        self._write_files()
        munge = self.root / "munge"
        self._spawn(
            "munged",
            "--foreground",
            f"--key-file={munge / 'key' / 'munge.key'}",
            f"--socket={munge / 'munge.socket'}",
            f"--pid-file={self.root / 'run' / 'munged.pid'}",
            f"--log-file={self.root / 'log' / 'munged.log'}",
            f"--seed-file={munge / 'munged.seed'}",
        )
        self._wait_for(lambda: (munge / "munge.socket").exists(), timeout, "munged")
        self._spawn("slurmctld", "-D", "-c", "-f", str(self.conf))
        self._spawn("slurmd", "-D", "-N", self.host, "-f", str(self.conf))
        self._wait_for(lambda: self.node_state() == "idle", timeout, "an idle node")

    def stop(self, timeout: float = 20.0) -> None:
        """Cancel every job, stop the daemons by process id, remove the link."""
        if "slurmctld" in self.processes and self.processes["slurmctld"].poll() is None:
            self.run("scancel", f"--user={os.getuid()}", check=False)
            deadline = time.monotonic() + timeout
            while (
                time.monotonic() < deadline
                and self.run(
                    "squeue", "--noheader", "--states=RUNNING,COMPLETING", check=False
                ).stdout.strip()
            ):
                time.sleep(0.5)
        for name in reversed(DAEMONS):
            process = self.processes.pop(name, None)
            if process is None or process.poll() is not None:
                continue
            os.kill(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait()
        if _is_ours(RUN_CONF):
            RUN_CONF.unlink()
            with contextlib.suppress(OSError):
                RUN_CONF.parent.rmdir()  # when nothing else is in it

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a SLURM client program against this cluster."""
        return subprocess.run(
            argv, env=self.env, capture_output=True, text=True, check=check
        )

    def node_state(self) -> str:
        result = self.run("sinfo", "--noheader", "--Node", "--format=%T", check=False)
        return result.stdout.strip().split("\n")[0] if result.returncode == 0 else ""

    def jobs(self) -> dict[str, dict[str, str]]:
        """Every job slurmctld still knows (finished ones for MinJobAge seconds).

        Returns
        -------
        dict
            ``scontrol show job`` fields (``JobState``, ``Partition``,
            ``Comment``, ``TimeLimit``, ...) by job id.
        """
        output = self.run("scontrol", "show", "job", "--oneliner").stdout
        jobs = {}
        for line in output.splitlines():
            if not line.startswith("JobId="):
                continue
            fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
            jobs[fields["JobId"]] = fields
        return jobs

    def logs(self, lines: int = 40) -> str:
        """The last ``lines`` lines of every daemon's log, for a failure report."""
        parts = []
        for path in sorted((self.root / "log").glob("*")):
            if path.suffix == ".out" and path.with_suffix(".log").exists():
                continue  # the daemon's console repeats its log file
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"----- {path.name} (last {lines} lines)\n" + "\n".join(tail))
        return "\n".join(parts)

    def _write_files(self) -> None:
        self.root.chmod(0o755)
        for folder in ("munge", "munge/key", "state", "spool", "run", "log"):
            (self.root / folder).mkdir(mode=0o755, parents=True, exist_ok=True)
        key_dir = self.root / "munge" / "key"
        key_dir.chmod(0o700)
        key = key_dir / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)

        template = (HERE / "slurm.conf.in").read_text()
        self.conf.write_text(
            template.format(
                root=self.root,
                host=self.host,
                ctld_port=_free_port(),
                slurmd_port=_free_port(),
                cpus=len(os.sched_getaffinity(0)),
                memory_mb=int(_memory_mb() * 0.8),
                training_partition=TRAINING_PARTITION,
            )
        )

        if _is_ours(RUN_CONF):
            RUN_CONF.unlink()  # left by a test run that was killed
        RUN_CONF.parent.mkdir(parents=True, exist_ok=True)
        RUN_CONF.symlink_to(self.root)

    def _spawn(self, name: str, *args: str) -> None:
        with open(self.root / "log" / f"{name}.out", "wb") as output:
            self.processes[name] = subprocess.Popen(
                [name, *args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )

    def _wait_for(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            exited = [n for n, p in self.processes.items() if p.poll() is not None]
            if exited or time.monotonic() > deadline:
                reason = f"{', '.join(exited)} exited" if exited else "timed out"
                raise RuntimeError(
                    f"SLURM test cluster: {reason} while waiting for {what}.\n"
                    + self.logs()
                )
            time.sleep(0.2)
