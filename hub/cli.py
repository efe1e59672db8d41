"""``mt4hub``: run the hub, run a standalone simulated EA Bridge, check a config, tail channels."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from hub.config import ConfigError, HubConfig, default_config_path, load_config
from hub.logs import setup_logging

if TYPE_CHECKING:
    from hub.bridge.profile import BridgeProfile

__all__ = ["main"]

log = logging.getLogger("mt4hub.cli")


def _load(path: str | None) -> HubConfig:
    try:
        return load_config(path or default_config_path())
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        raise SystemExit(1) from None


def cmd_check(args: argparse.Namespace) -> int:
    _load(args.config)
    print("ok")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    import uvicorn

    from hub.app import create_app
    from hub.server import uvicorn_options

    config = _load(args.config)
    host = args.host or config.server.host
    port = args.port or int(os.environ.get("PORT") or 0) or config.server.port
    setup_logging()  # replaced below, once the secrets to mask are known
    app = create_app(config, tune_gc=True, port=port)
    hub = app.state.hub
    weak = hub.auth.weak_secrets()
    if weak and not args.insecure_dev:
        for problem in weak:
            print(f"mt4hub run: {problem}", file=sys.stderr)
        print(
            "mt4hub run: refusing to start with a weak secret (--insecure-dev starts anyway, "
            "for a machine of your own only)",
            file=sys.stderr,
        )
        return 1
    setup_logging(secrets=hub.auth.secrets)
    for problem in weak:
        log.warning("insecure_dev weak secret accepted: %s", problem)
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    base = f"http://{shown}:{port}"
    print(f"MT4 Hub {len(config.agents)} agents, listening on {base}", flush=True)
    token = hub.auth.generated
    if token:
        saved = _save_secret(hub.data_dir / "admin-token", token)
        print(f"dashboard: {base}/ (admin token generated for this run: in {saved})", flush=True)
        # Once, on stderr and not in the log stream's formatter: the one time it is shown.
        print(f"dashboard with the generated token: {base}/?token={token}", file=sys.stderr)
    elif hub.auth.admin_token:
        print(f"dashboard: {base}/ (sign in with $HUB_ADMIN_TOKEN)", flush=True)
    else:
        print(f"dashboard: {base}/ (sign in with a configured token)", flush=True)
    uvicorn.run(app, host=host, port=port, **uvicorn_options(config.server))
    return 0


def _save_secret(path: Path, secret: str) -> Path:
    """Write ``secret`` to ``path``, readable by this user only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)  # also when the file existed with wider rights
        out.write(secret + "\n")
    return path


def cmd_sim(args: argparse.Namespace) -> int:
    from hub.bridge.sim_server import serve_sim_forever

    config = _load(args.config)
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    unknown = [s for s in symbols if s not in config.symbols]
    if unknown:
        print(f"--symbols: unknown symbol(s) {', '.join(unknown)}", file=sys.stderr)
        return 1
    profile = _profile(args.profile)
    if profile is None:
        return 1
    setup_logging()
    try:
        asyncio.run(
            serve_sim_forever(
                args.host,
                args.port,
                symbols={s: config.symbols[s] for s in symbols},
                balance=args.balance,
                leverage=args.leverage,
                seed=args.seed,
                control_token=args.control_token or None,
                profile=profile,
            )
        )
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"mt4hub sim: {exc}", file=sys.stderr)
        return 1
    return 0


def _profile(name: str) -> BridgeProfile | None:
    """The bridge profile ``--profile`` names, or None after printing its problems."""
    from hub.bridge.profile import ProfileError, load_profile

    try:
        return load_profile(name)
    except ProfileError as exc:
        for line in exc.problems:
            print(f"--profile: {line}", file=sys.stderr)
        return None


def cmd_probe(args: argparse.Namespace) -> int:
    from hub.bridge.probe import probe

    profile = _profile(args.profile)
    if profile is None:
        return 2
    url = args.url if "://" in args.url else f"http://{args.url}"
    return asyncio.run(
        probe(
            url,
            profile,
            symbol=args.symbol,
            trade=args.trade,
            lots=args.lots,
            within=args.timeout,
            timezone=args.timezone,
        )
    )


def cmd_tail(args: argparse.Namespace) -> int:
    from hub.tail import tail

    token = args.token or os.environ.get("HUB_TOKEN") or os.environ.get("HUB_ADMIN_TOKEN")
    if not token:
        print("mt4hub tail: give --token or set HUB_TOKEN", file=sys.stderr)
        return 1
    code = 0
    with contextlib.suppress(KeyboardInterrupt):
        code = asyncio.run(
            tail(
                args.url,
                token,
                args.channels,
                snapshots=not args.no_snapshots,
                connect_timeout=args.connect_timeout,
            )
        )
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mt4hub", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    cfg_help = f"config file (default: $HUB_CONFIG or {default_config_path()})"

    run = sub.add_parser("run", help="run the hub")
    run.add_argument("--config", default=os.environ.get("HUB_CONFIG"), help=cfg_help)
    run.add_argument("--host", help="bind address (default from config, 127.0.0.1)")
    run.add_argument("--port", type=int, help="port (beats $PORT, which beats the config)")
    run.add_argument(
        "--insecure-dev",
        action="store_true",
        help="start even with a weak secret (HUB_ADMIN_TOKEN under 16 characters, a JWT "
        "secret under 32 bytes): for a machine of your own only",
    )
    run.set_defaults(func=cmd_run)

    sim = sub.add_parser("sim", help="run a standalone simulated EA Bridge")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8081)
    sim.add_argument("--balance", type=float, default=200.0)
    sim.add_argument("--leverage", type=int, default=100)
    sim.add_argument("--symbols", default="XAUUSD,EURUSD,GBPUSD,USDJPY")
    sim.add_argument("--seed", type=int)
    sim.add_argument(
        "--control-token",
        default=os.environ.get("HUB_SIM_CONTROL_TOKEN"),
        help="token the /sim/ controls require (default: $HUB_SIM_CONTROL_TOKEN); without "
        "one they answer only on a loopback --host",
    )
    sim.add_argument("--config", default=os.environ.get("HUB_CONFIG"), help="symbol specs from")
    sim.add_argument(
        "--profile",
        default="mt4hub",
        help="answer in this bridge profile's dialect: a built-in name or a YAML file "
        "(docs/bridges.md; default mt4hub)",
    )
    sim.set_defaults(func=cmd_sim)

    probe = sub.add_parser(
        "probe", help="check a live EA Bridge against a bridge profile (read-only by default)"
    )
    probe.add_argument("url", help="the bridge, http://host:port")
    probe.add_argument("--profile", default="mt4hub", help="built-in name or YAML file")
    probe.add_argument("--symbol", default="XAUUSD", help="the symbol whose tick is read")
    probe.add_argument(
        "--trade",
        action="store_true",
        help="also open and close the minimum lot (a demo account only)",
    )
    probe.add_argument("--lots", type=float, default=0.01, help="what --trade opens")
    probe.add_argument("--timeout", type=float, default=5.0, metavar="S")
    probe.add_argument("--timezone", help="the trade server's zone (default: the profile's)")
    probe.set_defaults(func=cmd_probe)

    check = sub.add_parser("check", help="validate a config file")
    check.add_argument("--config", default=os.environ.get("HUB_CONFIG"), help=cfg_help)
    check.set_defaults(func=cmd_check)

    tail = sub.add_parser("tail", help="print channel events as JSON lines")
    tail.add_argument("channels", nargs="+", help="channels or patterns (agent:*:ticks)")
    tail.add_argument("--url", default="ws://127.0.0.1:8090/ws")
    tail.add_argument("--token", help="token (default: $HUB_TOKEN, then $HUB_ADMIN_TOKEN)")
    tail.add_argument("--no-snapshots", action="store_true", help="print live events only")
    tail.add_argument(
        "--connect-timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="give up when no connection succeeded within S seconds (default 5)",
    )
    tail.set_defaults(func=cmd_tail)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.captureWarnings(True)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
