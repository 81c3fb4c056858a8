"""A SuperExec that keeps the ClientApp loaded: ``python -m fedmood.deploy.warm_superexec``.

Flower 1.42's SuperNode hands each message to a SuperExec, which starts a fresh ``flwr-clientapp``
process for it: the process imports torch and fedmood (about 4 s here) to run a round that trains
for a fraction of that. Flower lets the SuperNode run without its own SuperExec
(``flower-supernode --isolation process``) and leaves the executor to the operator; this is that
executor, for one SuperNode:

* Flower's own SuperExec loop (:func:`flwr.supercore.superexec.run_superexec.run_superexec`:
  acquiring tasks from the SuperNode's Runtime API, its signal handling, the parent-process watch)
  with an :class:`InProcessExecutor` instead of its subprocess executor;
* :class:`InProcessExecutor` runs each ClientApp task in this process, one at a time (a SuperNode's
  tasks come one after another), with the task protocol of ``flwr-clientapp``: pull the message,
  the node's context and the app bundle (FAB), run the app, push the reply and the context, keep the
  task's heartbeat while it runs (a message's objects not there yet are pulled again after
  :data:`fedmood.federated.grid.OBJECT_PULL_BACKOFF`, not Flower's 1 s). The FAB is installed
  and its ClientApp loaded once per FAB hash,
  so torch and the device code are imported once per node, not once per message.

A ClientApp exception becomes the same error reply Flower sends (so the ServerApp sees the client
fail and fails the run), and the process goes on serving. Uses Flower 1.42.0's internals (the pin
in pyproject.toml); ``tests/deploy/test_warm_supernode.py`` checks that they are where this expects.
"""

from __future__ import annotations

import argparse
import os
import sys
from logging import ERROR, INFO

from flwr.app import Message
from flwr.app.error import Error
from flwr.cli.install import install_from_fab
from flwr.clientapp.client_app import ClientApp, LoadClientAppError
from flwr.clientapp.utils import get_load_client_app_fn
from flwr.common.constant import ErrorCode, SubStatus
from flwr.supercore import log
from flwr.supercore.constant import TaskType
from flwr.supercore.heartbeat import HeartbeatSender, make_task_heartbeat_fn_http
from flwr.supercore.interceptors import RuntimeTokenHttpInterceptor, RuntimeVersionHttpInterceptor
from flwr.supercore.retry import make_simple_http_retry_invoker
from flwr.supercore.runtime import RuntimeHttpClient
from flwr.supercore.superexec.executor.types import ExecutionSpec, LaunchResult
from flwr.supernode.runtime.run_clientapp import pull_task_input, push_message, push_task_output

from fedmood.federated.grid import shorten_object_pull_backoff

#: Seconds between the SuperExec's polls of the SuperNode for a task (Flower's default: 1 s).
DEFAULT_POLL = 0.05


class InProcessExecutor:
    """Runs ClientApp tasks in this process, one at a time; ClientApps cached by FAB hash."""

    def __init__(self) -> None:
        self._apps: dict[str, ClientApp] = {}
        self.tasks = 0

    # Flower's Executor protocol -------------------------------------------------------------
    def get_eligible_capacity(self, supported_task_types, *, insecure=False, root_certificates_path=None):
        return {t for t in supported_task_types if t == TaskType.CLIENT_APP}, set()

    def wait_for_capacity(self, task_type=None, *, fab_hash=None, insecure=False, root_certificates_path=None):
        return None

    def launch(self, spec: ExecutionSpec) -> LaunchResult:
        if spec.task_type != TaskType.CLIENT_APP:
            return LaunchResult.failed(f"this SuperExec runs ClientApps only, not {spec.task_type}")
        self.run_task(spec)
        return LaunchResult.accepted()

    def reconcile(self) -> None:
        return None

    def close(self) -> None:
        return None

    # One task ---------------------------------------------------------------------------------
    def _app(self, run, fab) -> ClientApp:
        if fab.hash_str not in self._apps:
            install_from_fab(fab.content, skip_prompt=True)
            load = get_load_client_app_fn(default_app_ref="", app_path=None, multi_app=True)
            self._apps[fab.hash_str] = load(run.fab_id, run.fab_version, fab.hash_str)
            log(INFO, "[warm superexec] ClientApp of FAB %s loaded", fab.hash_str[:12])
        return self._apps[fab.hash_str]

    def run_task(self, spec: ExecutionSpec) -> None:
        """The ``flwr-clientapp`` task protocol, in this process."""
        certificates = None
        if not spec.insecure and spec.root_certificates_path:
            with open(spec.root_certificates_path, "rb") as f:
                certificates = f.read()
        client = RuntimeHttpClient.from_server_address(
            server_address=spec.runtime_api_address,
            insecure=spec.insecure,
            root_certificates=certificates,
            interceptors=[
                RuntimeVersionHttpInterceptor(component_name="flwr-clientapp"),
                RuntimeTokenHttpInterceptor(spec.token),
            ],
            retry_invoker=make_simple_http_retry_invoker(),
        )
        heartbeat = HeartbeatSender(make_task_heartbeat_fn_http(client))
        message = context = reply = None
        status, details = SubStatus.FAILED, "ClientApp task failed due to unknown reason"
        try:
            heartbeat.start()
            message, context, run, fab = pull_task_input(client)
            app = self._app(run, fab)
            reply = app(message=message, context=context)
            status, details = SubStatus.COMPLETED, ""
        except Exception as ex:  # the client's failure goes to the ServerApp as Flower's error reply
            code = ErrorCode.CLIENT_APP_RAISED_EXCEPTION
            reason = f"{type(ex)}:<'{ex}'>"
            if isinstance(ex, LoadClientAppError):
                code, reason = ErrorCode.LOAD_CLIENT_APP_EXCEPTION, f"the ClientApp could not be loaded: {ex}"
            log(ERROR, "ClientApp raised an exception: %s", reason)
            details = reason
            if message is not None:
                reply = Message(Error(code=code, reason=reason), reply_to=message)
        finally:
            try:
                if reply is not None and context is not None:
                    push_message(client, reply, context)
            except Exception as ex:  # reported as the task's failure
                log(ERROR, "Failed to push the reply: %s", ex)
                status, details = SubStatus.FAILED, f"the reply could not be pushed: {ex}"
            push_task_output(client, context, status, details)
            if heartbeat.is_running:
                heartbeat.stop()
            client.close()
            self.tasks += 1


def main(argv: list[str] | None = None) -> None:
    """Serve one SuperNode's ClientApp tasks until the SuperNode (``--parent-pid``) exits."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runtime-api-address", required=True, help="the SuperNode's Runtime API (host:port)")
    ap.add_argument("--parent-pid", type=int, default=None, help="exit when this process (the SuperNode) exits")
    ap.add_argument("--poll", type=float, default=DEFAULT_POLL, help="seconds between polls for a task")
    tls = ap.add_mutually_exclusive_group(required=True)
    tls.add_argument("--insecure", action="store_true", help="the Runtime API without TLS (127.0.0.1 only)")
    tls.add_argument("--root-certificates", help="the CA of the Runtime API's certificate")
    args = ap.parse_args(argv)
    os.environ["FLWR_SUPEREXEC_TASK_POLL_INTERVAL"] = str(args.poll)
    import flwr.supercore.superexec.run_superexec as superexec
    import flwr.supernode.runtime.run_clientapp as clientapp_task

    shorten_object_pull_backoff(clientapp_task, "pull_and_inflate_object_from_tree")  # used by pull_task_input
    executor = InProcessExecutor()
    superexec.get_executor = lambda *a, **k: executor  # Flower's loop, this executor
    superexec.run_superexec(
        runtime_api_address=args.runtime_api_address,
        insecure=bool(args.insecure),
        root_certificates_path=args.root_certificates,
        parent_pid=args.parent_pid,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
