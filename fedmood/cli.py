"""How every entry point fails: bad input in one message and exit 2, nothing left half-written.

* :class:`~fedmood.errors.InputError` (a bad file, folder or config value, found by the validation
  that runs before any work): the message is printed without a traceback, the run's folder is
  removed (nothing was done), exit code 2.
* Ctrl-C: the run stops within seconds; Ray is shut down, the run's folder is marked ``FAILED``
  ("interrupted"), exit code 130; no process is left behind.
* A run that failed for a reason outside fedmood's code (:class:`~fedmood.errors.RunFailedError`,
  e.g. a client that raised): its reason is printed without a traceback, the folder is marked
  ``FAILED`` (the collectors skip it), exit code 1.
* Any other exception (an internal failure): the folder is marked ``FAILED`` with the reason, the
  traceback is printed, exit code 1.

``HYDRA_FULL_ERROR=1`` or ``FEDMOOD_DEBUG=1`` keeps the traceback of bad input too.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import sys
import threading
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path

from fedmood.errors import InputError, RunFailedError
from fedmood.process_tree import kill_pids, processes_with_env
from fedmood.results import FAILED, atomic_write_text

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def debugging() -> bool:
    """Whether the user asked for full tracebacks."""
    return any(os.environ.get(v, "") not in ("", "0") for v in ("HYDRA_FULL_ERROR", "FEDMOOD_DEBUG"))


def report_bad_input(err: InputError) -> None:
    """Print a bad-input error as one clear message (no traceback)."""
    print(f"error: {err}", file=sys.stderr, flush=True)


def discard_run_folder(folder: str | Path | None) -> None:
    """Remove a run's folder that holds nothing but what Hydra wrote before the run began."""
    if folder is not None and Path(folder).is_dir():
        shutil.rmtree(folder, ignore_errors=True)


def mark_failed(folder: str | Path | None, reason: str) -> None:
    """Mark a run's folder ``FAILED`` with the reason; sweep collectors skip such folders."""
    if folder is not None and Path(folder).is_dir():
        atomic_write_text(Path(folder) / FAILED, reason.rstrip() + "\n")


#: Every process a guarded run starts (Ray's, Flower's) inherits this variable, naming the run.
RUN_MARK = "FEDMOOD_RUN"


def mark_processes() -> None:
    """Tag this process's environment so that everything it starts can be found and stopped."""
    os.environ.setdefault(RUN_MARK, f"{os.getpid()}-{uuid.uuid4().hex[:8]}")


def stop_ray() -> None:
    """Shut down a Ray runtime this process started (simulations) and kill every process the run left.

    Flower may already have shut Ray down when the Ctrl-C reaches us, leaving busy workers that
    take seconds to notice; every process carrying this run's mark is killed instead.
    """
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        with contextlib.suppress(Exception):
            ray.shutdown()
    if RUN_MARK in os.environ:
        kill_pids(processes_with_env(RUN_MARK, os.environ[RUN_MARK]))


def stop_and_exit(code: int) -> None:
    """Stop Ray and exit now, silently.

    After a Ctrl-C, Flower's simulation threads (not daemons: Python would wait for them) fail as
    Ray goes away; their tracebacks are noise, so the output is closed before Ray is stopped.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    stop_ray()
    os._exit(code)


def guarded(task: Callable[..., object]) -> Callable[..., object]:
    """Wrap a Hydra task function with fedmood's failure handling (see the module docstring).

    Use below ``@hydra.main``; the run folder is Hydra's output folder of this job.
    """

    @functools.wraps(task)
    def wrapper(cfg):
        from hydra.core.hydra_config import HydraConfig

        folder = HydraConfig.get().runtime.output_dir if HydraConfig.initialized() else None
        mark_processes()
        previous = _on_ctrl_c(lambda *_: _interrupted(folder))
        try:
            return task(cfg)
        except InputError as err:
            discard_run_folder(folder)
            if debugging():
                raise
            report_bad_input(err)
            raise SystemExit(EXIT_BAD_INPUT) from None
        except RunFailedError as err:
            mark_failed(folder, str(err))
            if debugging():
                raise
            print(f"error: the run failed: {err}", file=sys.stderr, flush=True)
            raise SystemExit(EXIT_FAILED) from None
        except KeyboardInterrupt:
            _interrupted(folder)
        except Exception as err:
            mark_failed(folder, "".join(traceback.format_exception_only(err)))
            raise
        finally:
            _on_ctrl_c(previous)

    return wrapper


def _interrupted(folder: str | Path | None) -> None:
    """Ctrl-C: mark the run's folder, say so, stop every process of the run, exit 130."""
    mark_failed(folder, "interrupted (Ctrl-C)")
    print("\ninterrupted: the run stopped; its folder is marked FAILED", file=sys.stderr)
    stop_and_exit(EXIT_INTERRUPTED)


def _on_ctrl_c(handler):
    """Install ``handler`` for SIGINT (main thread only); the previous handler.

    A run handles Ctrl-C itself rather than waiting for a KeyboardInterrupt to come up through
    Flower's simulation loop (which can end the simulation quietly instead), and a SIGINT that
    the launching process left ignored does not make the run deaf to Ctrl-C.
    """
    if threading.current_thread() is not threading.main_thread() or handler is None:
        return None
    return signal.signal(signal.SIGINT, handler)


def run_cli(main: Callable[[], object]) -> None:
    """Run a plain (argparse) entry point with the same failure handling, for commands without Hydra."""
    mark_processes()
    try:
        main()
    except InputError as err:
        if debugging():
            raise
        report_bad_input(err)
        raise SystemExit(EXIT_BAD_INPUT) from None
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        stop_and_exit(EXIT_INTERRUPTED)
