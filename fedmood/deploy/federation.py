"""A real Flower federation on this machine: one SuperLink, one SuperNode per user, over TLS.

:class:`LocalFederation` lays out a folder::

    <root>/certs/                 CA, SuperLink certificate and key (fedmood.deploy.credentials)
    <root>/nodes/node-<i>/        one device: store/ (encrypted), store.key (0600), auth key pair
    <root>/flwr/config.toml       the ``flwr`` CLI's SuperLink connection (address, CA)
    <root>/logs/                  one log per process
    <root>/checkpoint.npz         the ServerApp's per-round checkpoint
    <root>/results/               the runs' results folders

and starts ``flower-superlink`` (TLS, ``--enable-supernode-auth``), registers every node's public
key with ``flwr supernode register``, starts SuperNode processes on 127.0.0.1 whose node config
names their store (:mod:`fedmood.deploy.supernode`: Flower's SuperNode with a warm ClientApp; or
Flower's ``flower-supernode`` itself with ``warm=False``), and starts runs of this project's
ServerApp/ClientApp with ``flwr run <project> <connection>``. Every process it starts it also stops
(whole process trees).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from fedmood.deploy.credentials import TlsFiles, ensure_node_key, ensure_tls, tls_files
from fedmood.deploy.processes import Component, cmdline, free_port, kill_all, start
from fedmood.paths import PROJECT_ROOT
from fedmood.process_tree import descendants, kill_pids, processes_with_env
from fedmood.studies.mood.data.device_store import node_store_paths, provision_devices

CONNECTION = "fedmood-local"
BIN = Path(sys.executable).parent  # the venv's console scripts: flower-superlink, flower-supernode, flwr


@dataclass
class LocalFederation:
    """A SuperLink and ``n_nodes`` SuperNodes under ``root`` (see the module docstring)."""

    root: Path
    n_nodes: int
    secure: bool = True  # TLS with the generated CA (False: --insecure, for comparison only)
    auth: bool = True  # SuperNode authentication: only registered public keys may connect
    port: int = 0  # SuperLink port (0: a free one)
    warm: bool = True  # fedmood.deploy.supernode (a warm ClientApp, short waits); False: Flower's flower-supernode
    superlink: Component | None = None
    nodes: dict[int, Component] = field(default_factory=dict)
    runs: list[Component] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        if self.auth and not self.secure:
            raise ValueError("SuperNode authentication needs TLS (secure=True), as Flower requires")
        self.port = self.port or free_port()
        self._node_ports = {i: free_port() for i in range(self.n_nodes)}

    # ------------------------------------------------------------------ layout
    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def node_dir(self, i: int) -> Path:
        return self.root / "nodes" / f"node-{i}"

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoint.npz"

    def env(self) -> dict[str, str]:
        """Environment of every process: this venv first on PATH, the flwr CLI's home in ``root``."""
        env = dict(os.environ)
        env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
        env.update(
            FLWR_HOME=str(self.root / "flwr"),
            FLWR_TELEMETRY_ENABLED="0",
            FLWR_DISABLE_UPDATE_CHECK="1",
            FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION="1",
            RAY_USAGE_STATS_ENABLED="0",
        )
        return env

    # ------------------------------------------------------------ provisioning
    def provision(self, logs_dir: str | Path) -> list[dict]:
        """Give node ``i`` the ``i``-th user folder of ``logs_dir`` in its own encrypted store (once)."""
        return provision_devices(self.root / "nodes", logs_dir, self.n_nodes)

    def write_credentials(self) -> None:
        """TLS files, node key pairs and the ``flwr`` CLI's connection config."""
        tls = ensure_tls(self.root / "certs") if self.secure else None
        for i in range(self.n_nodes):
            ensure_node_key(self.node_dir(i), "auth")
        lines = [
            "[superlink]",
            f'default = "{CONNECTION}"',
            "",
            f"[superlink.{CONNECTION}]",
            f'address = "{self.address}"',
        ]
        lines.append(f'root-certificates = "{tls.ca_cert}"' if tls else "insecure = true")
        (self.root / "flwr").mkdir(parents=True, exist_ok=True)
        (self.root / "flwr" / "config.toml").write_text("\n".join(lines) + "\n")

    # --------------------------------------------------------------- processes
    def start_superlink(self, timeout: float = 60.0) -> Component:
        """``flower-superlink`` on 127.0.0.1 with TLS and SuperNode authentication."""
        cmd = [str(BIN / "flower-superlink"), "--host", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--disable-runtime-dependency-installation", "--database", str(self.root / "superlink.db")]
        cmd += self._tls_args() if self.secure else ["--insecure"]
        if self.auth:
            cmd.append("--enable-supernode-auth")
        self.superlink = start("superlink", cmd, self.root / "logs" / "superlink.log", self.env())
        self.superlink.wait_for("Uvicorn running on", timeout)
        return self.superlink

    @property
    def tls(self) -> TlsFiles:
        """The TLS files' paths (:func:`fedmood.deploy.credentials.tls_files`)."""
        return tls_files(self.root / "certs")

    def _tls_args(self) -> list[str]:
        tls = self.tls
        return ["--ssl-ca-certfile", str(tls.ca_cert), "--ssl-certfile", str(tls.server_cert),
                "--ssl-keyfile", str(tls.server_key)]  # fmt: skip

    def register_nodes(self) -> dict[int, int]:
        """Register every node's public key with the SuperLink (``flwr supernode register``).

        Returns the node ids of the keys registered now; keys the SuperLink's database already
        holds (a federation started again in the same folder) are kept as they are.
        """
        ids = {}
        for i in range(self.n_nodes):
            out = self.flwr(
                ["supernode", "register", str(self.node_dir(i) / "auth.pub"), CONNECTION, "--format", "json"]
            )
            reply = json.loads(out)
            if reply.get("success"):
                ids[i] = int(reply["node-id"])
            elif "already in use" not in reply.get("error-message", ""):
                raise RuntimeError(f"registering node {i} failed: {out}")
        return ids

    def flwr(self, args: list[str], timeout: float = 120.0) -> str:
        """Run the ``flwr`` CLI against this federation; its stdout (raises with its output on failure)."""
        proc = subprocess.run(
            [str(BIN / "flwr"), *args], capture_output=True, text=True, env=self.env(), timeout=timeout
        )
        if proc.returncode != 0:
            raise RuntimeError(f"flwr {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    def node_command(self, i: int, extra_config: str = "") -> list[str]:
        """The SuperNode command of node ``i`` (:mod:`fedmood.deploy.supernode`, or Flower's own unless ``warm``)."""
        store, key_file = node_store_paths(self.root / "nodes", i)
        config = f'store="{store}" store-key-file="{key_file}" {extra_config}'.strip()
        launcher = [sys.executable, "-m", "fedmood.deploy.supernode"] if self.warm else [str(BIN / "flower-supernode")]
        cmd = [*launcher, "--superlink", self.address, "--port", str(self._node_ports[i])]
        cmd += ["--node-config", config, "--max-retries", "3", "--max-wait-time", "30"]
        cmd += ["--root-certificates", str(self.tls.ca_cert)] if self.secure else ["--insecure"]
        if self.auth:
            cmd += ["--auth-supernode-private-key", str(self.node_dir(i) / "auth")]
        return cmd

    def start_node(self, i: int, extra_config: str = "", timeout: float = 150.0) -> Component:
        """Start SuperNode ``i`` (again, after a crash) and wait until the SuperLink accepted it.

        The SuperLink refuses a node it still believes online; a killed node is believed online
        until it misses its heartbeats (up to 20 s warm, 60 s with Flower's SuperNode), so a restart
        is retried until ``timeout``.
        """
        log = self.root / "logs" / f"supernode-{i}.log"
        end = time.monotonic() + timeout
        while True:
            log.unlink(missing_ok=True)
            self.nodes[i] = start(f"supernode-{i}", self.node_command(i, extra_config=extra_config), log, self.env())
            try:
                self.nodes[i].wait_for("SuperNode ID:", max(end - time.monotonic(), 1.0))
                return self.nodes[i]
            except RuntimeError:
                if "[code: 2004]" not in self.nodes[i].text() or time.monotonic() > end:
                    raise
            time.sleep(1.0)

    def kill_node(self, i: int) -> None:
        """SIGKILL SuperNode ``i`` and everything it started (a device that dies)."""
        self.nodes[i].kill()

    def kill_serverapp(self) -> list[int]:
        """SIGKILL the running ServerApp process(es) (the server side of a run dies); their pids."""
        pids = [p for p in descendants(self.superlink.process.pid) if "flwr-serverapp" in cmdline(p)]
        kill_pids(pids)
        return pids

    def start(self, logs_dir: str | Path | None = None, node_config: dict[int, str] | None = None) -> LocalFederation:
        """Credentials, stores (from ``logs_dir``), SuperLink, registration, all SuperNodes.

        ``node_config`` adds node-config entries to some nodes (e.g. a fault to inject).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        if logs_dir is not None:
            self.provision(logs_dir)
        self.write_credentials()
        self.start_superlink()
        if self.auth:
            self.register_nodes()
        for i in range(self.n_nodes):
            self.start_node(i, (node_config or {}).get(i, ""))
        return self

    def run_command(self, rounds: int | None = None, overrides: list[str] = ()) -> list[str]:
        """The ``flwr run`` command of the mood recommender on this federation (``rounds``: None, the default)."""
        settings = [f"federation.nodes={self.n_nodes}", f"results_root={self.root / 'results'}", *overrides]
        config = {"engine": "deployment", "overrides": shlex.join(settings)}
        if rounds is not None:
            config["num-server-rounds"] = rounds
        rc = " ".join(f"{k}={json.dumps(v)}" for k, v in config.items())
        return [str(BIN / "flwr"), "run", str(PROJECT_ROOT), CONNECTION, "--stream", "--run-config", rc]

    def run_app(self, rounds: int, overrides: list[str] = ()) -> Component:
        """Start ``flwr run`` of the mood recommender on this federation (streams its log); returns at once."""
        cmd = self.run_command(rounds, overrides)
        n = len(self.runs)
        run = start(f"flwr-run-{n}", cmd, self.root / "logs" / f"run-{n}.log", self.env(), cwd=PROJECT_ROOT)
        self.runs.append(run)
        return run

    def stop(self) -> None:
        """Kill every process this federation started (runs, SuperNodes, SuperLink) and all their children."""
        comps = [*self.runs, *self.nodes.values(), *([self.superlink] if self.superlink else [])]
        kill_all([c.process for c in comps])
        end = time.monotonic() + 10.0
        while (left := self.leftover_processes()) and time.monotonic() < end:  # orphans re-parented to init
            kill_pids(left)
            time.sleep(0.2)

    def device_reports(self) -> dict[int, dict[str, list]]:
        """Each device's own report (its errors, ε, personalisation; kept in its store under a privacy
        mechanism), read with the devices' keys: this harness provisioned every device, so it can."""
        from fedmood.data.store import EncryptedStore
        from fedmood.federated.device_report import REPORT_RECORD

        out = {}
        for i in range(self.n_nodes):
            store = EncryptedStore.open(*node_store_paths(self.root / "nodes", i))
            if REPORT_RECORD in store:
                out[i] = store.get_json(REPORT_RECORD)
        return out

    def leftover_processes(self) -> list[int]:
        """Processes still running in this federation's environment (none after :meth:`stop`)."""
        return processes_with_env("FLWR_HOME", str(self.root / "flwr"))

    def __enter__(self) -> LocalFederation:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
