#!/usr/bin/env python3
"""A whole firmware update of an SMP device with intercreate's smpclient, a client written
independently of smpflash: proof that the smpflash simulator speaks SMP as Zephyr does.

    python3 tests/interop/smpclient_dfu.py --udp 127.0.0.1:1337 --image app.bin
    python3 tests/interop/smpclient_dfu.py --serial /dev/pts/5 --image app.bin
    python3 tests/interop/smpclient_dfu.py --ble C0:53:4D:50:00:01 --image app.bin --expect-mtu 498

Over BLE it uses smpclient's `SMPBLETransport` (Bleak on BlueZ, so on Linux it reaches
`smpflash sim --bluez` when DBUS_SYSTEM_BUS_ADDRESS points at the sim's bus); that transport
learns the ATT MTU with BlueZ's AcquireWrite.

Steps: echo, MCUmgr parameters, image state, upload, mark the new image for test, reset,
reconnect, check the new image runs unconfirmed, confirm it, check it is confirmed. Each
step is printed; any mismatch ends the run with a message on stderr and exit status 1.

Needs `pip install -r tests/requirements.txt`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import time
import traceback
from typing import Any

from smpclient import SMPClient
from smpclient.generics import error, success
from smpclient.requests.image_management import ImageStatesRead, ImageStatesWrite
from smpclient.requests.os_management import EchoWrite, MCUMgrParametersRead, ResetWrite
from smpclient.transport import SMPTransport
from smpclient.transport.ble import SMPBLETransport
from smpclient.transport.serial import SMPSerialTransport
from smpclient.transport.udp import IPV4_UDP_OVERHEAD, SMPUDPTransport

from interop_common import Failure, check, fail, mcuboot_hash, step

# How long the device may take to reboot before the run gives up on it.
REBOOT_TIMEOUT_S = 30.0


def expect_success(response: Any, what: str) -> Any:
    if error(response):
        raise Failure(f"{what}: the device answered with an error: {response}")
    check(success(response), f"{what}: unexpected answer {response!r}")
    return response


class UDPTransportOnPort(SMPUDPTransport):
    """`SMPUDPTransport` on a port other than 1337: `SMPClient.connect` passes no port."""

    def __init__(self, port: int, mtu: int) -> None:
        super().__init__(mtu=mtu)
        self._port = port

    async def connect(self, address: str, timeout_s: float, port: int | None = None) -> None:
        await super().connect(address, timeout_s, port=self._port)


def make_transport(args: argparse.Namespace, buf_size: int | None) -> tuple[SMPTransport, str]:
    if args.udp:
        host, _, port = args.udp.rpartition(":")
        # The UDP transport sizes its datagrams from the link MTU, not from the device's
        # buffers, and Zephyr cuts a datagram to its UDP MTU (at most one SMP buffer) and answers
        # the cut request with MGMT_ERR_ECORRUPT: once buf_size is
        # known, the MTU is set so that a datagram is at most buf_size.
        mtu = buf_size + IPV4_UDP_OVERHEAD if buf_size else 1500
        return UDPTransportOnPort(int(port), mtu), host
    if args.ble:
        # Learns the ATT MTU from BlueZ (AcquireWrite) while connecting.
        return SMPBLETransport(), args.ble
    # The serial transport learns the buffer size from the parameters command by itself.
    return SMPSerialTransport(), args.serial


async def connect(args: argparse.Namespace, buf_size: int | None = None) -> SMPClient:
    transport, address = make_transport(args, buf_size)
    client = SMPClient(transport, address, timeout_s=args.timeout)
    await client.connect()
    if args.expect_mtu is not None:
        # smpclient writes values of MTU-3 bytes: the MTU it learnt must be the link's.
        check(
            transport.mtu == args.expect_mtu - 3,
            f"the transport writes {transport.mtu} byte values; ATT MTU {args.expect_mtu} "
            f"allows {args.expect_mtu - 3}",
        )
    return client


async def reconnect(args: argparse.Namespace, buf_size: int) -> SMPClient:
    """Connects again once the device answers after its reboot."""
    deadline = time.monotonic() + REBOOT_TIMEOUT_S
    while True:
        client = await connect(args, buf_size)
        try:
            answer = await client.request(EchoWrite(d="up?"), timeout_s=1.0)
            if success(answer) and answer.r == "up?":
                return client
        except TimeoutError:
            pass
        await client.disconnect()
        if time.monotonic() > deadline:
            raise Failure(f"the device did not answer within {REBOOT_TIMEOUT_S}s of its reset")
        await asyncio.sleep(0.2)


def slot(images: list[Any], number: int) -> Any:
    for s in images:
        if (s.image or 0) == 0 and s.slot == number:
            return s
    raise Failure(f"image state lists no slot {number}: {images}")


def describe(images: list[Any]) -> str:
    flags = ("bootable", "pending", "confirmed", "active", "permanent")
    return "; ".join(
        f"image {s.image or 0} slot {s.slot} v{s.version} {s.hash.hex()[:16] if s.hash else '-'} "
        + ",".join(f for f in flags if getattr(s, f))
        for s in images
    )


async def read_state(client: SMPClient) -> list[Any]:
    state = expect_success(await client.request(ImageStatesRead()), "image state read")
    print(f"    {describe(state.images)}", flush=True)
    return state.images


async def run(args: argparse.Namespace) -> None:
    image = open(args.image, "rb").read()
    new_hash = mcuboot_hash(image)

    step(f"connect to {args.udp or args.serial or args.ble}")
    client = await connect(args)

    step("echo")
    answer = expect_success(await client.request(EchoWrite(d="smpclient interop")), "echo")
    check(answer.r == "smpclient interop", f"echo returned {answer.r!r}")

    step("MCUmgr parameters")
    params = expect_success(await client.request(MCUMgrParametersRead()), "parameters")
    print(f"    buf_size={params.buf_size} buf_count={params.buf_count}", flush=True)
    check(params.buf_size > 0 and params.buf_count > 0, f"implausible parameters {params}")
    if args.udp:
        # Now that buf_size is known, size the datagrams to it.
        await client.disconnect()
        client = await connect(args, params.buf_size)

    step("image state")
    images = await read_state(client)
    running = slot(images, 0)
    check(bool(running.active and running.confirmed), "slot 0 is not the active, confirmed image")
    check(running.hash != new_hash, "the device already runs the image to upload")
    old_hash = running.hash

    step(f"upload {args.image} ({len(image)} bytes)")
    started = time.monotonic()
    offset = 0
    async for offset in client.upload(image):
        pass
    check(offset == len(image), f"upload ended at offset {offset} of {len(image)}")
    print(f"    done in {time.monotonic() - started:.2f}s", flush=True)

    step("image state after the upload")
    images = await read_state(client)
    uploaded = slot(images, 1)
    check(
        uploaded.hash == new_hash,
        f"slot 1 reports hash {uploaded.hash.hex() if uploaded.hash else None}, the image's "
        f"SHA-256 TLV is {new_hash.hex()}",
    )
    check(not uploaded.pending, "the new image is pending before it was marked")

    step("mark the new image for test")
    state = expect_success(
        await client.request(ImageStatesWrite(hash=uploaded.hash, confirm=False)),
        "image state write (test)",
    )
    print(f"    {describe(state.images)}", flush=True)
    marked = slot(state.images, 1)
    check(bool(marked.pending) and not marked.permanent, "slot 1 is not pending for a test boot")

    step("reset")
    expect_success(await client.request(ResetWrite()), "reset")
    await client.disconnect()

    step("reconnect")
    client = await reconnect(args, params.buf_size)

    step("image state after the reboot")
    images = await read_state(client)
    running = slot(images, 0)
    check(running.hash == new_hash, "slot 0 does not hold the new image after the reboot")
    check(bool(running.active), "the new image is not active")
    check(not running.confirmed, "the new image is confirmed before anyone confirmed it")
    previous = slot(images, 1)
    check(previous.hash == old_hash, "slot 1 does not hold the previous image (swap)")

    step("confirm the running image")
    state = expect_success(
        await client.request(ImageStatesWrite(confirm=True)), "image state write (confirm)"
    )
    print(f"    {describe(state.images)}", flush=True)

    step("image state after confirming")
    images = await read_state(client)
    running = slot(images, 0)
    check(
        running.hash == new_hash and bool(running.active) and bool(running.confirmed),
        "slot 0 is not the new image, active and confirmed",
    )
    await client.disconnect()
    step("update complete")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--udp", metavar="HOST:PORT", help="SMP over UDP")
    target.add_argument("--serial", metavar="PATH", help="SMP over a serial port or pty")
    target.add_argument("--ble", metavar="NAME|ADDRESS", help="SMP over BLE (Bleak)")
    parser.add_argument("--image", required=True, help="signed MCUboot image to install")
    parser.add_argument("--timeout", type=float, default=5.0, help="per-request timeout (s)")
    parser.add_argument(
        "--expect-mtu", type=int, help="check that the transport learnt this ATT MTU"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="smpclient debug log")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(name)s: %(message)s",
    )
    try:
        asyncio.run(run(args))
    except Failure as e:
        fail(str(e))
    except TimeoutError as e:
        fail(f"the device did not answer: {e}")
    except Exception as e:  # noqa: BLE001 - anything smpclient raises is a failed step
        traceback.print_exc()
        fail(f"{type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
