"""``mt4hub``: run the hub, run a standalone simulated EA Bridge, check a config, tail channels."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Sequence

from hub.config import ConfigError, HubConfig, default_config_path, load_config
from hub.logs import setup_logging

__all__ = ["main"]


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

    from channels.asgi import PreframedWebSocketProtocol
    from hub.app import create_app

    config = _load(args.config)
    host = args.host or config.server.host
    port = args.port or int(os.environ.get("PORT") or 0) or config.server.port
    setup_logging()
    app = create_app(config, tune_gc=True, port=port)
    hub = app.state.hub
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    base = f"http://{shown}:{port}"
    print(f"MT4 Hub {len(config.agents)} agents, listening on {base}", flush=True)
    token = hub.auth.generated
    if token:
        print(f"admin token (generated for this run): {token}", flush=True)
        print(f"dashboard: {base}/?token={token}", flush=True)
    elif hub.auth.admin_token:
        print(f"dashboard: {base}/?token=$HUB_ADMIN_TOKEN (token from the environment)", flush=True)
    else:
        print(f"dashboard: {base}/?token=<a configured token>", flush=True)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        ws=PreframedWebSocketProtocol,  # websockets-sansio, plus direct writes of shared frames
        ws_per_message_deflate=False,
        ws_ping_interval=config.server.heartbeat,
        ws_ping_timeout=config.server.heartbeat,
        ws_max_size=config.server.max_frame_bytes * 4,
        proxy_headers=True,
        access_log=False,
    )
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    from hub.bridge.sim_server import serve_sim_forever

    config = _load(args.config)
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    unknown = [s for s in symbols if s not in config.symbols]
    if unknown:
        print(f"--symbols: unknown symbol(s) {', '.join(unknown)}", file=sys.stderr)
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
            )
        )
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"mt4hub sim: {exc}", file=sys.stderr)
        return 1
    return 0


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
    run.set_defaults(func=cmd_run)

    sim = sub.add_parser("sim", help="run a standalone simulated EA Bridge")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8081)
    sim.add_argument("--balance", type=float, default=200.0)
    sim.add_argument("--leverage", type=int, default=100)
    sim.add_argument("--symbols", default="XAUUSD,EURUSD,GBPUSD,USDJPY")
    sim.add_argument("--seed", type=int)
    sim.add_argument("--config", default=os.environ.get("HUB_CONFIG"), help="symbol specs from")
    sim.set_defaults(func=cmd_sim)

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
