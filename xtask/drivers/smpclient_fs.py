#!/usr/bin/env python3
"""Moves one file with intercreate's smpclient (`upload_file` / `download_file`) and prints
what the transfer took, for `cargo xtask bench --fs`:

    python3 xtask/drivers/smpclient_fs.py --udp 127.0.0.1:1337 --upload local.bin /lfs1/f.bin
    python3 xtask/drivers/smpclient_fs.py --serial /dev/pts/5 --baud 1000000 --download /lfs1/f.bin out.bin

Prints one JSON line: {"seconds", "bytes", "chunk", "window", "version"}. `seconds` covers the
transfer only (its first request to its last answer), not connecting or reading parameters,
so it compares with smpflash's own transfer time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from importlib.metadata import version

from smpclient_upload import connect
from smpclient.generics import success
from smpclient.requests.os_management import MCUMgrParametersRead


async def run(args: argparse.Namespace) -> dict:
    client = await connect(args)
    if args.udp:
        # As the image driver does: datagrams no larger than one device buffer.
        params = await client.request(MCUMgrParametersRead())
        if not success(params):
            raise SystemExit(f"parameters: {params}")
        await client.disconnect()
        client = await connect(args, params.buf_size)
    chunk = 0
    if args.upload:
        local, remote = args.upload
        data = open(local, "rb").read()
        previous = 0
        offset = 0
        started = time.perf_counter()
        async for offset in client.upload_file(data, remote):
            chunk = max(chunk, offset - previous)
            previous = offset
        seconds = time.perf_counter() - started
        if offset != len(data):
            raise SystemExit(f"upload ended at offset {offset} of {len(data)}")
        moved = len(data)
    else:
        remote, local = args.download
        started = time.perf_counter()
        data = await client.download_file(remote)
        seconds = time.perf_counter() - started
        open(local, "wb").write(data)
        moved = len(data)
    await client.disconnect()
    # smpclient waits for each answer before the next request: one request in flight.
    return {"seconds": seconds, "bytes": moved, "chunk": chunk or None, "window": 1, "version": version("smpclient")}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    link = p.add_mutually_exclusive_group(required=True)
    link.add_argument("--udp", metavar="HOST:PORT")
    link.add_argument("--serial", metavar="PATH")
    p.add_argument("--baud", type=int, default=115200)
    p.add_argument("--mtu", type=int, default=1500, help="UDP path MTU (smpclient's default 1500)")
    p.add_argument("--timeout", type=float, default=5.0)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--upload", nargs=2, metavar=("LOCAL", "REMOTE"))
    what.add_argument("--download", nargs=2, metavar=("REMOTE", "LOCAL"))
    args = p.parse_args()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
