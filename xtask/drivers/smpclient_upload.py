#!/usr/bin/env python3
"""Uploads one image with intercreate's smpclient and prints what the upload took, for
`cargo xtask bench`:

    python3 xtask/drivers/smpclient_upload.py --udp 127.0.0.1:1337 --image app.bin
    python3 xtask/drivers/smpclient_upload.py --serial /dev/pts/5 --baud 115200 --image app.bin

Prints one JSON line: {"seconds", "bytes", "chunk", "window", "version"}. `seconds` covers the
upload only (first chunk to the device's last offset), not connecting or reading parameters,
so it compares with smpflash's own upload time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from importlib.metadata import version

from smpclient import SMPClient
from smpclient.generics import success
from smpclient.requests.os_management import MCUMgrParametersRead
from smpclient.transport import SMPTransport
from smpclient.transport.serial import SMPSerialTransport
from smpclient.transport.udp import IPV4_UDP_OVERHEAD, SMPUDPTransport


class UDPTransportOnPort(SMPUDPTransport):
    """`SMPUDPTransport` on a port other than 1337: `SMPClient.connect` passes no port."""

    def __init__(self, port: int, mtu: int) -> None:
        super().__init__(mtu=mtu)
        self._port = port

    async def connect(self, address: str, timeout_s: float, port: int | None = None) -> None:
        await super().connect(address, timeout_s, port=self._port)


def transport(args: argparse.Namespace, buf_size: int | None) -> tuple[SMPTransport, str]:
    if args.udp:
        host, _, port = args.udp.rpartition(":")
        # smpclient sizes datagrams from the path MTU (its default: 1500), and the device drops
        # a datagram larger than one buffer: never more than one buffer's worth.
        mtu = min(args.mtu, buf_size + IPV4_UDP_OVERHEAD) if buf_size else args.mtu
        return UDPTransportOnPort(int(port), mtu), host
    # The serial transport reads buf_size from the parameters command itself.
    return SMPSerialTransport(baudrate=args.baud), args.serial


async def connect(args: argparse.Namespace, buf_size: int | None = None) -> SMPClient:
    t, address = transport(args, buf_size)
    client = SMPClient(t, address, timeout_s=args.timeout)
    await client.connect()
    return client


async def run(args: argparse.Namespace) -> dict:
    image = open(args.image, "rb").read()
    client = await connect(args)
    if args.udp:
        params = await client.request(MCUMgrParametersRead())
        if not success(params):
            raise SystemExit(f"parameters: {params}")
        await client.disconnect()
        client = await connect(args, params.buf_size)
    chunk = 0
    previous = 0
    started = time.perf_counter()
    offset = 0
    async for offset in client.upload(image, first_timeout_s=args.first_timeout):
        chunk = max(chunk, offset - previous)
        previous = offset
    seconds = time.perf_counter() - started
    await client.disconnect()
    if offset != len(image):
        raise SystemExit(f"upload ended at offset {offset} of {len(image)}")
    # smpclient waits for each answer before the next chunk: one request in flight.
    return {"seconds": seconds, "bytes": len(image), "chunk": chunk, "window": 1, "version": version("smpclient")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--udp", metavar="HOST:PORT")
    target.add_argument("--serial", metavar="PATH")
    parser.add_argument("--baud", type=int, default=115200, help="serial baud rate")
    parser.add_argument("--mtu", type=int, default=1500, help="UDP path MTU (smpclient's default)")
    parser.add_argument("--image", required=True)
    parser.add_argument("--timeout", type=float, default=5.0, help="per-request timeout (s)")
    parser.add_argument(
        "--first-timeout", type=float, default=120.0, help="first chunk (the device erases) (s)"
    )
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - any failure is reported to the bench as text
        print(f"smpclient upload failed: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
