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
import signal
import sys
import time
from pathlib import Path

from fedmood.deploy.federation import LocalFederation
from fedmood.paths import PROJECT_ROOT


def _logs_dir(args: argparse.Namespace) -> Path:
    if args.logs:
        return Path(args.logs)
    from fedmood.data.generator import GeneratorConfig, ensure_generated

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


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    overrides = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = _parser().parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    args.root = args.root.resolve()
    secure = not args.insecure
    fed = LocalFederation(args.root, args.nodes, secure=secure, auth=secure)
    marker = args.root / "fault-marker"
    node_config = {}
    if getattr(args, "kill_node", None) is not None:
        marker.unlink(missing_ok=True)
        node_config[args.kill_node] = f'fault-marker="{marker}" fault-round={args.kill_round}'
    signal.signal(signal.SIGTERM, _terminate)
    try:
        fed.start(_logs_dir(args), node_config)
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
        return run.process.returncode
    except KeyboardInterrupt:
        return 130
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):  # nothing may interrupt the clean-up
            signal.signal(sig, signal.SIG_IGN)
        fed.stop()
        print("[deploy] federation stopped", flush=True)


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


if __name__ == "__main__":
    sys.exit(main())
