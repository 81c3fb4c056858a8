"""Start and stop a local Flower federation of the mood recommender (README, "Deployment").

    python -m fedmood.deploy up  --nodes 3                  # stays up until Ctrl-C, then stops everything
    python -m fedmood.deploy run --nodes 3 --rounds 10      # up, one run of the app, down
    python -m fedmood.deploy run --nodes 5 --rounds 6 --kill-node 4 --kill-round 3 --rejoin

Each node gets one user's day logs (``--logs`` a folder of user folders, else generated ones) in
its own encrypted store; the SuperLink serves TLS and admits only the registered SuperNodes.
Extra arguments after ``--`` are Hydra overrides for the run (e.g. ``-- privacy=secagg``).
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import signal
import sys
import time
from pathlib import Path

from fedmood.cli import run_cli
from fedmood.deploy.federation import LocalFederation
from fedmood.errors import Problems
from fedmood.paths import PROJECT_ROOT


def _logs_dir(args: argparse.Namespace) -> Path:
    if args.logs:
        return Path(args.logs)
    from fedmood.studies.mood.data.generator import GeneratorConfig, ensure_generated

    return ensure_generated(GeneratorConfig(n_users=args.nodes, n_days=args.days, seed=args.seed), args.root / "data")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fedmood.deploy", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    for name, text in (("up", "start the federation and keep it up"), ("run", "start, run the app once, stop")):
        s = sub.add_parser(name, help=text)
        s.add_argument("--root", type=Path, default=PROJECT_ROOT / "results" / "deploy", help="federation folder")
        s.add_argument("--nodes", type=int, default=3, help="SuperNodes (one user each)")
        s.add_argument("--logs", help="folder of user folders of day logs (default: generated)")
        s.add_argument("--days", type=int, default=20, help="days per generated user")
        s.add_argument("--seed", type=int, default=4006)
        s.add_argument("--insecure", action="store_true", help="no TLS and no node authentication")
    run = sub.choices["run"]
    run.add_argument("--rounds", type=int, default=10)
    run.add_argument("--min-replies", type=int, default=None, help="replies a round needs (default: nodes - 1)")
    run.add_argument("--kill-node", type=int, default=None, help="SIGKILL this node during --kill-round")
    run.add_argument("--kill-round", type=int, default=2)
    run.add_argument("--rejoin", action="store_true", help="restart the killed node")
    run.add_argument("--resume", action="store_true", help="continue from the federation's checkpoint")
    return p


def _option(p: Problems, name: str, value: int | None, low: int, high: int | None = None) -> None:
    if value is not None and (value < low or (high is not None and value > high)):
        allowed = f">= {low}" if high is None else f"in {low}..{high}"
        p.add(f"option --{name}", f"must be {allowed}, got {value}")


def check_args(args: argparse.Namespace, overrides: list[str]) -> None:
    """Every option, the logs folder and the run's config (with the overrides), before anything starts."""
    from fedmood.studies.mood.data.logs import check_logs_folder
    from fedmood.studies.mood.run_config import compose_config, run_config_overrides

    p = Problems()
    _option(p, "nodes", args.nodes, 1)
    _option(p, "days", args.days, 1)
    if args.command == "run":
        _option(p, "rounds", args.rounds, 1)
        _option(p, "min-replies", args.min_replies, 1, max(args.nodes, 1))
        _option(p, "kill-node", args.kill_node, 0, args.nodes - 1)
        if args.kill_node is not None:
            _option(p, "kill-round", args.kill_round, 1, args.rounds)
        if args.rejoin and args.kill_node is None:
            p.add("option --rejoin", "needs --kill-node (the node to restart)")
    if args.logs:
        n_users = p.absorb(check_logs_folder, args.logs)
        if n_users is not None and n_users < args.nodes:
            p.add(f"option --logs {args.logs}", f"has {n_users} user folders for {args.nodes} nodes")
    if not p:
        rounds = {"num-server-rounds": args.rounds} if args.command == "run" else {}
        settings = [*run_config_overrides({"engine": "deployment", **rounds}), f"federation.nodes={args.nodes}"]
        try:
            p.absorb(compose_config, settings + overrides)
        except Exception as err:  # Hydra's own errors: an unknown key, a bad override
            p.add(f"overrides after -- ({shlex.join(overrides)})", str(err).splitlines()[0])
    p.raise_if_any()


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    overrides = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = _parser().parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.root = args.root.resolve()
    check_args(args, overrides)  # refuses bad input before anything is provisioned or started
    secure = not args.insecure
    fed = LocalFederation(args.root, args.nodes, secure=secure, auth=secure)
    marker = args.root / "fault-marker"
    node_config = {}
    if getattr(args, "kill_node", None) is not None:
        marker.unlink(missing_ok=True)
        node_config[args.kill_node] = f'fault-marker="{marker}" fault-round={args.kill_round}'
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGTERM, _terminate)
    provisioned_before = set((args.root / "nodes").glob("node-*"))
    try:
        try:
            fed.start(_logs_dir(args), node_config)
        except BaseException:
            for node in set((args.root / "nodes").glob("node-*")) - provisioned_before:
                shutil.rmtree(node, ignore_errors=True)  # stores this call provisioned: nothing half-made stays
            raise
        print(f"[deploy] SuperLink {fed.address} ({'TLS + node auth' if secure else 'insecure'}), "
              f"{args.nodes} SuperNodes; logs in {args.root / 'logs'}", flush=True)  # fmt: skip
        if args.command == "up":
            print(
                f"[deploy] run the app with:\n  FLWR_HOME={args.root / 'flwr'} {shlex.join(fed.run_command())}\n"
                "[deploy] Ctrl-C stops the federation",
                flush=True,
            )
            while True:
                time.sleep(3600)
        min_replies = args.min_replies if args.min_replies is not None else max(args.nodes - 1, 1)
        settings = [f"federation.min_replies={min_replies}", f"federation.checkpoint={fed.checkpoint}", *overrides]
        if args.resume:
            settings.append("federation.resume=true")
        run = fed.run_app(args.rounds, settings)
        print(f"[deploy] flwr run started ({shlex.join(settings)}); log {run.log}", flush=True)
        shown, pending_kill = 0, bool(node_config)
        while run.alive:
            shown = _echo(run.text(), shown)
            if pending_kill and marker.exists():
                pending_kill = False
                fed.kill_node(args.kill_node)
                print(f"[deploy] killed SuperNode {args.kill_node} in round {args.kill_round}", flush=True)
                if args.rejoin:
                    fed.start_node(args.kill_node)
                    print(f"[deploy] SuperNode {args.kill_node} rejoined", flush=True)
            time.sleep(0.5)
        _echo(run.text(), shown)
        return _outcome(run.text(), run.process.returncode, run.log)
    except KeyboardInterrupt:
        return 130
    finally:
        for sig in previous:  # nothing may interrupt the clean-up...
            signal.signal(sig, signal.SIG_IGN)
        fed.stop()
        print("[deploy] federation stopped", flush=True)
        for sig, handler in previous.items():  # ...and then the caller's handlers are back (an ignored
            signal.signal(sig, handler)  # SIGINT would outlive the call and pass on to every child process)


def _outcome(text: str, returncode: int, log: Path) -> int:
    """The run's exit code: non-zero if ``flwr run`` failed or the ServerApp ended without its results."""
    if returncode == 0 and any(line.startswith("results: ") for line in text.splitlines()):
        return 0
    errors = [line for line in text.splitlines() if "Error" in line or "Exception" in line or "error" in line]
    print(f"[deploy] the run FAILED (flwr run exit code {returncode}); log {log}", file=sys.stderr, flush=True)
    for line in errors[-8:]:
        print(f"[deploy]   {line.strip()}", file=sys.stderr, flush=True)
    return returncode or 1


def _terminate(*_) -> None:
    """SIGTERM: stop once (a second signal, e.g. from ``timeout`` forwarding it, is ignored)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise SystemExit(143)


def _echo(text: str, shown: int) -> int:
    """Print the fedmood progress lines of the run log not shown yet."""
    lines = text.splitlines()
    for line in lines[shown:]:
        if line.startswith(("[federated]", "[privacy]", "results:")) or "Node Unavailable" in line:
            print(line, flush=True)
    return len(lines)


def cli() -> None:
    """``python -m fedmood.deploy``: bad input exits 2 with one message, a failed run with its code."""
    code = 0

    def _main() -> None:
        nonlocal code
        code = main()

    run_cli(_main)
    sys.exit(code)


if __name__ == "__main__":
    cli()
