"""The ceiling for pixel hits: a bare aiohttp handler returning the same GIF, nothing else."""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web

from collector.pixel import GIF
from common.runtime import run_main


async def gif(request: web.Request) -> web.Response:
    return web.Response(body=GIF, content_type="image/gif", headers={"Cache-Control": "no-store"})


async def serve(port: int) -> None:
    app = web.Application()
    app.router.add_get("/pixel.gif", gif)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m load.ceiling")
    parser.add_argument("--port", type=int, required=True)
    run_main(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
