#!/usr/bin/env python3
"""SMP over BLE with Bleak, a BlueZ client written independently of smpflash, against
`smpflash sim --bluez`: proof that the emulated BlueZ serves more than btleplug.

    smpflash sim --bluez            # prints: export DBUS_SYSTEM_BUS_ADDRESS=...
    export DBUS_SYSTEM_BUS_ADDRESS=...
    python3 tests/interop/bleak_smp.py --image tests/fixtures/images/ecdsa-p256.bin

Steps: scan for a device advertising the SMP service, connect, (with --pair: see a
subscription refused for insufficient authentication, pair, retry), subscribe to the SMP
characteristic, echo, read the MCUmgr parameters, upload the image chunk by chunk (each
request written without response in pieces of at most MTU-3 bytes, each answer reassembled
from notifications), and check the device now holds it in its secondary slot. SMP frames are
built by hand: an 8-byte header and a CBOR body. Any mismatch ends the run with exit status 1.

With --acquire the SMP traffic goes through BlueZ's sockets instead: notifications through
AcquireNotify (Bleak's `use_start_notify=False`), writes as packets on the socket of
AcquireWrite, whose MTU must be the characteristic's; while the write socket is out, WriteValue
must be refused ("Write acquired"), and once it is closed, accepted again.

Needs `pip install -r tests/requirements.txt` (bleak, and cbor2 through smpclient).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import sys

import cbor2
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakDBusError
from dbus_fast import Message, MessageType
from interop_common import Failure, check, mcuboot_hash, step

SMP_SERVICE = "8d53dc1d-1db7-4cd3-868b-8a527460aa84"
SMP_CHARACTERISTIC = "da2e7828-fbce-4e01-ae9e-261174997c48"

# SMP header (Zephyr's mgmt/mcumgr/transport/smp.h): op and version share the first byte.
HEADER = struct.Struct(">BBHHBB")
OP_READ, OP_WRITE = 0, 2
SMP_V2 = 1
GROUP_OS, GROUP_IMAGE = 0, 1
OS_ECHO, OS_PARAMS = 0, 6
IMAGE_STATE, IMAGE_UPLOAD = 0, 1

class Smp:
    """Requests over the SMP characteristic: one at a time, answers matched by sequence."""

    def __init__(self, client: BleakClient, characteristic) -> None:
        self.client = client
        self.characteristic = characteristic
        self.pending = b""
        self.frames: asyncio.Queue[bytes] = asyncio.Queue()
        self.seq = 0
        # With --acquire: the AcquireWrite socket, and the largest packet it takes.
        self.write_fd: int | None = None
        self.piece = characteristic.max_write_without_response_size

    def on_notify(self, _sender, data: bytearray) -> None:
        # The device notifies a frame in pieces and starts each frame in a new notification.
        self.pending += bytes(data)
        while len(self.pending) >= HEADER.size:
            total = HEADER.size + struct.unpack_from(">H", self.pending, 2)[0]
            if len(self.pending) < total:
                break
            self.frames.put_nowait(self.pending[:total])
            self.pending = self.pending[total:]

    def frame(self, op: int, group: int, command: int, body: dict) -> bytes:
        payload = cbor2.dumps(body)
        self.seq = (self.seq + 1) % 256
        return HEADER.pack(op | SMP_V2 << 3, 0, len(payload), group, self.seq, command) + payload

    async def request(self, op: int, group: int, command: int, body: dict, what: str) -> dict:
        frame = self.frame(op, group, command, body)
        piece = self.piece
        for at in range(0, len(frame), piece):
            if self.write_fd is not None:
                # One packet is one write without response.
                os.write(self.write_fd, frame[at : at + piece])
            else:
                await self.client.write_gatt_char(self.characteristic, frame[at : at + piece], response=False)
        while True:
            answer = await asyncio.wait_for(self.frames.get(), timeout=10)
            answer_op, _, length, answer_group, seq, answer_command = HEADER.unpack_from(answer)
            if seq != self.seq:
                continue  # an answer to an earlier request that timed out
            check(answer_op & 7 == op + 1, f"{what}: answer has op {answer_op & 7}")
            check((answer_group, answer_command) == (group, command), f"{what}: answer is for another command")
            reply = cbor2.loads(answer[HEADER.size : HEADER.size + length])
            check(reply.get("rc", 0) == 0 and "err" not in reply, f"{what}: the device refused: {reply}")
            return reply


async def subscribe(client: BleakClient, smp: Smp, pair: bool) -> None:
    if pair:
        step("subscribing before pairing (the device requires it)")
        try:
            await client.start_notify(smp.characteristic, smp.on_notify)
        except BleakDBusError as e:
            check(e.dbus_error == "org.bluez.Error.NotPermitted", f"refused with {e.dbus_error}, not NotPermitted")
            print(f"    refused as expected: {e.dbus_error}: {e.dbus_error_details}")
        else:
            raise Failure("the device accepted a subscription without pairing")
        step("pairing")
        await client.pair()
    await client.start_notify(smp.characteristic, smp.on_notify)


async def call_characteristic(client: BleakClient, characteristic, member: str) -> Message:
    """Calls a GattCharacteristic1 method that Bleak has no API for, on Bleak's own bus."""
    return await client._backend._bus.call(  # noqa: SLF001 - Bleak's BlueZ backend
        Message(
            destination="org.bluez",
            path=characteristic.obj[0],
            interface="org.bluez.GattCharacteristic1",
            member=member,
            signature="a{sv}",
            body=[{}],
        )
    )


async def acquire_write(client: BleakClient, smp: Smp) -> None:
    reply = await call_characteristic(client, smp.characteristic, "AcquireWrite")
    check(reply.message_type == MessageType.METHOD_RETURN, f"AcquireWrite failed: {reply.error_name} {reply.body}")
    check(len(reply.unix_fds) == 1, f"AcquireWrite passed {len(reply.unix_fds)} fds")
    fd, mtu = reply.unix_fds[0], reply.body[1]
    check(
        mtu - 3 == smp.characteristic.max_write_without_response_size,
        f"AcquireWrite says MTU {mtu}, the characteristic allows writes of "
        f"{smp.characteristic.max_write_without_response_size}",
    )
    print(f"    write socket fd {fd}, ATT MTU {mtu}")
    smp.write_fd, smp.piece = fd, mtu - 3


async def check_write_value_locked(client: BleakClient, smp: Smp) -> None:
    try:
        await client.write_gatt_char(smp.characteristic, b"\0", response=False)
    except BleakDBusError as e:
        check(e.dbus_error == "org.bluez.Error.NotPermitted", f"refused with {e.dbus_error}")
        print(f"    WriteValue refused while acquired: {e.dbus_error_details}")
    else:
        raise Failure("WriteValue was accepted while the write socket was acquired")


async def upload(smp: Smp, image: bytes, buf_size: int) -> None:
    offset = 0
    chunks = 0
    while offset < len(image):
        body = {"image": 0, "off": offset, "data": b""}
        if offset == 0:
            body["len"] = len(image)
        # The frame must fit the device's buffer: header, the body without data, and up to 3
        # bytes of CBOR length in front of the data.
        room = buf_size - HEADER.size - len(cbor2.dumps(body)) - 3
        body["data"] = image[offset : offset + room]
        reply = await smp.request(OP_WRITE, GROUP_IMAGE, IMAGE_UPLOAD, body, f"upload at {offset}")
        check(reply.get("off", -1) > offset, f"upload at {offset}: device answered offset {reply.get('off')}")
        offset = reply["off"]
        chunks += 1
    print(f"    {len(image)} bytes in {chunks} chunks")


async def run(args: argparse.Namespace) -> None:
    image = open(args.image, "rb").read()
    step("scanning for the SMP service")
    device = await BleakScanner.find_device_by_filter(
        lambda _d, ad: SMP_SERVICE in [u.lower() for u in ad.service_uuids],
        timeout=args.scan_timeout,
        service_uuids=[SMP_SERVICE],
    )
    check(device is not None, f"no device advertising the SMP service within {args.scan_timeout} s")
    print(f"    found {device.address} {device.name!r}")

    step("connecting")
    async with BleakClient(device, timeout=args.scan_timeout) as client:
        characteristic = client.services.get_characteristic(SMP_CHARACTERISTIC)
        check(characteristic is not None, "no SMP characteristic after service discovery")
        check(
            {"write-without-response", "notify"} <= set(characteristic.properties),
            f"SMP characteristic has {characteristic.properties}",
        )
        print(f"    writes of up to {characteristic.max_write_without_response_size} bytes (ATT MTU - 3)")
        smp = Smp(client, characteristic)
        if args.acquire:
            step("AcquireNotify, AcquireWrite")
            await client.start_notify(characteristic, smp.on_notify, bluez={"use_start_notify": False})
            await acquire_write(client, smp)
            await check_write_value_locked(client, smp)
        else:
            await subscribe(client, smp, args.pair)

        step("echo")
        text = "hello from bleak " * 20  # longer than a write, so it goes in pieces
        reply = await smp.request(OP_WRITE, GROUP_OS, OS_ECHO, {"d": text}, "echo")
        check(reply.get("r") == text, f"echo came back as {reply.get('r')!r}")

        step("MCUmgr parameters")
        params = await smp.request(OP_READ, GROUP_OS, OS_PARAMS, {}, "params")
        print(f"    buf_size {params['buf_size']}, buf_count {params['buf_count']}")

        step(f"uploading {args.image}")
        await upload(smp, image, params["buf_size"])

        step("image state")
        state = await smp.request(OP_READ, GROUP_IMAGE, IMAGE_STATE, {}, "state")
        secondary = [s for s in state["images"] if s.get("image", 0) == 0 and s["slot"] == 1]
        check(secondary and secondary[0]["hash"] == mcuboot_hash(image), f"secondary slot after upload: {state}")
        print(f"    slot 1 holds version {secondary[0]['version']}, hash {secondary[0]['hash'].hex()[:16]}")

        if args.acquire:
            step("release the write socket, then WriteValue")
            os.close(smp.write_fd)
            smp.write_fd, smp.piece = None, characteristic.max_write_without_response_size
            reply = await smp.request(OP_WRITE, GROUP_OS, OS_ECHO, {"d": "after release"}, "echo")
            check(reply.get("r") == "after release", f"echo came back as {reply.get('r')!r}")
    step("bleak: scan, connect, echo and upload done")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", required=True, help="an imgtool-signed image to upload")
    parser.add_argument("--pair", action="store_true", help="the device requires pairing: check it, then pair")
    parser.add_argument("--acquire", action="store_true", help="use AcquireNotify and AcquireWrite sockets")
    parser.add_argument("--scan-timeout", type=float, default=10.0)
    args = parser.parse_args()
    try:
        asyncio.run(run(args))
    except (Failure, BleakDBusError, asyncio.TimeoutError) as e:
        print(f"bleak_smp: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
