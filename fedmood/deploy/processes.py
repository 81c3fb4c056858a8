"""Starting, watching and killing the processes of a local federation (Linux ``/proc``, no psutil).

Flower's SuperLink and SuperNodes spawn their own children (``flower-superexec``, then one
``flwr-serverapp`` / ``flwr-clientapp`` per run or message), some in new sessions; stopping a
component therefore kills its whole process tree, found by parent ids.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from fedmood.process_tree import descendants, kill_pids


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cmdline(pid: int) -> str:
    """The command line of ``pid`` ('' if it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def kill_all(processes: list[subprocess.Popen], timeout: float = 10.0) -> None:
    """SIGKILL the processes and all their descendants (found before any is killed), then reap them."""
    pids = []
    for proc in processes:
        pids += [proc.pid, *descendants(proc.pid)]
    kill_pids(pids)
    for proc in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)


@dataclass
class Component:
    """One started process (SuperLink, SuperNode, ``flwr run``) with its log file."""

    name: str
    process: subprocess.Popen
    log: Path

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def text(self) -> str:
        """Its log so far."""
        return self.log.read_text(errors="replace") if self.log.is_file() else ""

    def wait_for(self, pattern: str, timeout: float) -> None:
        """Block until ``pattern`` appears in the log; raises if the process exits or time runs out."""
        end = time.monotonic() + timeout
        while pattern not in self.text():
            if not self.alive:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; log {self.log}:\n{tail(self)}")
            if time.monotonic() > end:
                raise TimeoutError(f"{self.name}: no {pattern!r} after {timeout:.0f} s; log {self.log}:\n{tail(self)}")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL the process and all its descendants, then reap it."""
        kill_all([self.process])


def tail(component: Component, lines: int = 30) -> str:
    return "\n".join(component.text().splitlines()[-lines:])


def start(name: str, cmd: list[str], log: Path, env: dict[str, str], cwd: Path | None = None) -> Component:
    """Start ``cmd`` in its own session, stdout and stderr to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:  # a fresh log: readiness is read from it
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)
    return Component(name, proc, log)
