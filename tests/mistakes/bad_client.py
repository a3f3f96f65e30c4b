#!/usr/bin/env python3
"""A hand-written SMP client that makes the mistakes people make when they write their own,
one scenario per mistake (and `all`, the script this project started from), to check that
the virtual device names each one.

    smpflash sim --udp 127.0.0.1:1337
    python3 tests/mistakes/bad_client.py --udp 127.0.0.1:1337 --image app.signed.bin --scenario json-body

    smpflash sim --bluez              # prints: export DBUS_SYSTEM_BUS_ADDRESS=...
    python3 tests/mistakes/bad_client.py --ble C0:53:4D:50:00:01 --image ... --scenario all

Like the script it imitates, it does not check the device's answers (it prints them as hex)
and it always ends with "DFU process completed!". The device's own output (its warnings and
its summary when it stops) and `smpflash status` say what really happened. Every scenario
but the mistake itself does things right: an 8-byte big-endian header, a CBOR body, `len`
and `sha` on the first chunk, one request at a time, waiting for each answer.

Needs `pip install -r tests/requirements.txt` (bleak, cbor2).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import socket
import struct
import sys
import time

import cbor2

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent / "interop"))
from interop_common import mcuboot_hash  # noqa: E402

SMP_CHARACTERISTIC = "da2e7828-fbce-4e01-ae9e-261174997c48"
HEADER = struct.Struct(">BBHHBB")
OP_READ, OP_WRITE = 0, 2
GROUP_OS, GROUP_IMAGE = 0, 1
OS_RESET, OS_PARAMS = 5, 6
IMAGE_STATE, IMAGE_UPLOAD = 0, 1
CHUNK = 256


class Link:
    """Sends packets and collects whatever comes back; `request` waits for one answer."""

    async def send(self, packet: bytes) -> None:
        raise NotImplementedError

    async def answer(self, timeout: float = 3.0) -> bytes | None:
        raise NotImplementedError

    async def request(self, packet: bytes, timeout: float = 3.0) -> bytes | None:
        await self.send(packet)
        got = await self.answer(timeout)
        print(f"    answer: {got.hex(' ') if got else 'none'}", flush=True)
        return got

    async def drain(self, wait: float = 0.5) -> None:
        while await self.answer(wait) is not None:
            pass

    async def close(self) -> None:
        pass


class Udp(Link):
    def __init__(self, address: str) -> None:
        host, port = address.rsplit(":", 1)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect((host, int(port)))
        self.sock.setblocking(False)

    async def send(self, packet: bytes) -> None:
        self.sock.send(packet)

    async def answer(self, timeout: float = 3.0) -> bytes | None:
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(loop.sock_recv(self.sock, 65536), timeout)
        except (asyncio.TimeoutError, ConnectionRefusedError):
            return None


class Ble(Link):
    """Bleak on BlueZ, as the original script: writes without response, answers from
    notifications, the write size from `mtu_size` (unless told the real one)."""

    def __init__(self, client, notify: bool) -> None:
        self.client = client
        self.frames: asyncio.Queue[bytes] = asyncio.Queue()
        self.pending = b""
        self.notify = notify
        self.piece = client.services.get_characteristic(SMP_CHARACTERISTIC).max_write_without_response_size

    @classmethod
    async def connect(cls, address: str, notify: bool = True) -> "Ble":
        from bleak import BleakClient, BleakScanner

        device = await BleakScanner.find_device_by_address(address, timeout=10)
        if device is None:
            raise SystemExit(f"no BLE device {address}")
        client = BleakClient(device)
        await client.connect()
        link = cls(client, notify)
        if notify:
            await client.start_notify(SMP_CHARACTERISTIC, link.on_notify)
        return link

    def on_notify(self, _sender, data: bytearray) -> None:
        self.pending += bytes(data)
        while len(self.pending) >= 8:
            total = 8 + struct.unpack_from(">H", self.pending, 2)[0]
            if len(self.pending) < total:
                break
            self.frames.put_nowait(self.pending[:total])
            self.pending = self.pending[total:]

    async def send(self, packet: bytes, piece: int | None = None) -> None:
        from bleak.exc import BleakError

        piece = piece or self.piece
        for at in range(0, len(packet), piece):
            try:
                await self.client.write_gatt_char(SMP_CHARACTERISTIC, packet[at : at + piece], response=False)
            except BleakError as e:  # BleakDBusError too
                print(f"    write failed: {e}", flush=True)
                return

    async def answer(self, timeout: float = 3.0) -> bytes | None:
        try:
            return await asyncio.wait_for(self.frames.get(), timeout)
        except asyncio.TimeoutError:
            return None

    async def close(self) -> None:
        await self.client.disconnect()


class Client:
    """Builds requests, right by default; each scenario breaks one thing."""

    def __init__(self, link: Link, image: bytes) -> None:
        self.link = link
        self.image = image
        self.seq = 0

    def frame(self, op: int, group: int, command: int, body: bytes) -> bytes:
        self.seq = (self.seq + 1) % 256
        return HEADER.pack(op, 0, len(body), group, self.seq, command) + body

    def chunk_body(self, off: int, size: int = CHUNK, with_len: bool = True) -> bytes:
        body = {"off": off, "data": self.image[off : off + size]}
        if off == 0 and with_len:
            body["len"] = len(self.image)
            body["sha"] = hashlib.sha256(self.image).digest()
        return cbor2.dumps(body)

    async def upload(self) -> None:
        """A correct upload: one chunk at a time, from the offset the device answers."""
        off = 0
        while off < len(self.image):
            got = await self.link.request(self.frame(OP_WRITE, GROUP_IMAGE, IMAGE_UPLOAD, self.chunk_body(off)))
            if got is None:
                raise SystemExit("the device stopped answering the upload")
            off = cbor2.loads(got[8:])["off"]

    async def state_write(self, body: dict) -> bytes | None:
        return await self.link.request(self.frame(OP_WRITE, GROUP_IMAGE, IMAGE_STATE, cbor2.dumps(body)))

    async def reset(self) -> None:
        await self.link.request(self.frame(OP_WRITE, GROUP_OS, OS_RESET, cbor2.dumps({})))


# The scenarios: one mistake each.


async def swapped_header(c: Client) -> None:
    """Header fields in the wrong places: op 0 for a write, the group in the length field, the
    body length little-endian in the group field, the command id in the sequence byte."""
    body = c.chunk_body(0)
    header = struct.pack(">BBH", OP_READ, 0, GROUP_IMAGE) + struct.pack("<H", len(body)) + bytes([IMAGE_UPLOAD, 1])
    await c.link.request(header + body)


async def little_endian_group(c: Client) -> None:
    """The group written little-endian (struct '<H'): group 1 arrives as 256."""
    body = cbor2.dumps({})
    header = struct.pack(">BBH", OP_READ, 0, len(body)) + struct.pack("<H", GROUP_IMAGE) + bytes([1, IMAGE_STATE])
    await c.link.request(header + body)


async def wrong_op(c: Client) -> None:
    """An upload sent as a read (op 0)."""
    await c.link.request(c.frame(OP_READ, GROUP_IMAGE, IMAGE_UPLOAD, c.chunk_body(0)))


async def json_body(c: Client) -> None:
    """A JSON body with base64 data where SMP wants a CBOR map with bytes."""
    data = base64.b64encode(c.image[:128]).decode()
    body = json.dumps({"image": {"data": data, "off": 0}}).encode()
    await c.link.request(c.frame(OP_WRITE, GROUP_IMAGE, IMAGE_UPLOAD, body))


async def no_wait(c: Client) -> None:
    """Every chunk written at once, no answer waited for."""
    for off in range(0, len(c.image), CHUNK):
        await c.link.send(c.frame(OP_WRITE, GROUP_IMAGE, IMAGE_UPLOAD, c.chunk_body(off)))
    await c.link.drain()


async def confirm_as_params(c: Client) -> None:
    """"Confirm" sent as group 0 command 6 (MCUmgr params) with an empty map."""
    await c.upload()
    await c.link.request(c.frame(OP_WRITE, GROUP_OS, OS_PARAMS, cbor2.dumps({})))


async def reset_as_state_write(c: Client) -> None:
    """"Reset" sent as group 1 command 0 (image state) with an empty map."""
    await c.upload()
    await c.state_write({})


def bleak_mtu(c: Client) -> int:
    """What the original script asked Bleak for: `mtu_size`, which on BlueZ is 23 (with a
    warning) until `_acquire_mtu()` ran, whatever the link negotiated. Over UDP there is no
    MTU to ask; the script's constant was the same 23."""
    if isinstance(c.link, Ble):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return c.link.client.mtu_size
    return 23


async def mtu_chunk(c: Client) -> None:
    """The chunk size from Bleak's mtu_size, 23 on BlueZ until the MTU was acquired: minus the
    ATT, SMP and CBOR overhead it is negative, and the slice takes almost the whole image."""
    mtu = bleak_mtu(c)
    size = mtu - 3 - 8 - 40
    data = c.image[0:size]
    print(f"    mtu_size {mtu}, chunk size {size}: a {len(data)}-byte chunk", flush=True)
    body = cbor2.dumps({"off": 0, "data": data, "len": len(c.image), "sha": hashlib.sha256(c.image).digest()})
    packet = c.frame(OP_WRITE, GROUP_IMAGE, IMAGE_UPLOAD, body)
    if isinstance(c.link, Ble):
        # Written whole, as one value: "the chunk" is what fits the MTU, they thought.
        await c.link.send(packet, piece=len(packet))
        await c.link.drain()
    else:
        await c.link.request(packet)


async def no_len(c: Client) -> None:
    """The first chunk without len (nor sha)."""
    await c.link.request(c.frame(OP_WRITE, GROUP_IMAGE, IMAGE_UPLOAD, c.chunk_body(0, with_len=False)))


async def not_an_image(c: Client) -> None:
    """The image without its MCUboot header (as from zephyr.bin instead of zephyr.signed.bin)."""
    c.image = c.image[32:]
    await c.link.request(c.frame(OP_WRITE, GROUP_IMAGE, IMAGE_UPLOAD, c.chunk_body(0)))


async def offset_skip(c: Client) -> None:
    """The second chunk sent from twice the chunk size."""
    await c.link.request(c.frame(OP_WRITE, GROUP_IMAGE, IMAGE_UPLOAD, c.chunk_body(0)))
    await c.link.request(c.frame(OP_WRITE, GROUP_IMAGE, IMAGE_UPLOAD, c.chunk_body(2 * CHUNK)))


async def offset_repeat(c: Client) -> None:
    """The second chunk sent twice."""
    for off in (0, CHUNK, CHUNK):
        await c.link.request(c.frame(OP_WRITE, GROUP_IMAGE, IMAGE_UPLOAD, c.chunk_body(off)))


async def confirm_without_hash(c: Client) -> None:
    """The upload, then {"confirm": true} without the new image's hash."""
    await c.upload()
    await c.state_write({"confirm": True})


async def reset_unmarked(c: Client) -> None:
    """The upload, then a reset without marking the image."""
    await c.upload()
    await c.reset()


async def test_no_confirm(c: Client) -> None:
    """The upload, a test mark, a reset; the new image runs but is never confirmed."""
    await c.upload()
    await c.state_write({"hash": mcuboot_hash(c.image), "confirm": False})
    await c.reset()


async def everything(c: Client) -> None:
    """The script this project started from: all of the above at once."""
    mtu = bleak_mtu(c)
    size = mtu - 3 - 8 - 40
    print(f"    chunk size {size}", flush=True)
    for off in range(0, len(c.image), 300):
        data = base64.b64encode(c.image[off : off + 300]).decode()
        body = json.dumps({"image": {"data": data, "off": off}}).encode()
        header = struct.pack(">BBH", OP_READ, 0, GROUP_IMAGE) + struct.pack("<H", len(body)) + bytes([IMAGE_UPLOAD, 1])
        await c.link.send(header + body)
        await asyncio.sleep(0.01)
    confirm = cbor2.dumps({})
    await c.link.send(struct.pack(">BBH", OP_READ, 0, GROUP_OS) + struct.pack("<H", len(confirm)) + bytes([OS_PARAMS, 2]) + confirm)
    await c.link.send(struct.pack(">BBH", OP_READ, 0, GROUP_IMAGE) + struct.pack("<H", len(confirm)) + bytes([IMAGE_STATE, 3]) + confirm)
    while (got := await c.link.answer(1.0)) is not None:
        print(f"    answer: {got.hex(' ')}", flush=True)


SCENARIOS = {
    "swapped-header": swapped_header,
    "little-endian-group": little_endian_group,
    "wrong-op": wrong_op,
    "json-body": json_body,
    "no-wait": no_wait,
    "confirm-as-params": confirm_as_params,
    "reset-as-state-write": reset_as_state_write,
    "mtu-chunk": mtu_chunk,
    "no-len": no_len,
    "not-an-image": not_an_image,
    "offset-skip": offset_skip,
    "offset-repeat": offset_repeat,
    "confirm-without-hash": confirm_without_hash,
    "reset-unmarked": reset_unmarked,
    "test-no-confirm": test_no_confirm,
    "no-notify": None,  # BLE only: below
    "all": everything,
}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--udp", metavar="HOST:PORT")
    where.add_argument("--ble", metavar="ADDRESS")
    ap.add_argument("--image", required=True)
    ap.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    args = ap.parse_args()
    image = open(args.image, "rb").read()
    started = time.monotonic()
    print(f"==> {args.scenario}", flush=True)
    if args.scenario == "no-notify":
        if not args.ble:
            raise SystemExit("no-notify is a BLE mistake")
        # Writes before (without) enabling notifications: every answer is lost.
        link = await Ble.connect(args.ble, notify=False)
        c = Client(link, image)
        await link.send(c.frame(OP_READ, GROUP_OS, 0, cbor2.dumps({"d": "hello"})))
        await asyncio.sleep(1.0)
    else:
        link = Udp(args.udp) if args.udp else await Ble.connect(args.ble)
        await SCENARIOS[args.scenario](Client(link, image))
    await link.close()
    print(f"DFU process completed! ({time.monotonic() - started:.1f} s)", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
