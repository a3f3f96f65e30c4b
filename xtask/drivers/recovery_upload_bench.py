#!/usr/bin/env python3
"""Times a 64 KiB upload into MCUboot's serial recovery on a real Zephyr/MCUboot build under
QEMU, with smpflash and with smpclient, a fresh QEMU per upload (docs/performance.md,
"MCUboot serial recovery without params"):

    python3 xtask/drivers/recovery_upload_bench.py --smpflash target/release/smpflash \
        [--config serial_recovery_buf1024] [--size 65536] [--repeat 3] [--tools smpflash,smpclient,smpflash-nobuf]

Each run: start the fixture's `qemu_cmd` on a free port, wait for the application to answer an
echo, send `os reset` with `{"boot_mode": 1}` by hand (raw console framing), wait for MCUboot's
recovery to answer, then upload. smpflash gets `--buf-size 1024` (recovery reports no params);
smpclient gets `BufferSize(buf_size=1024)`, its way to set the buffer a device does not report.
Prints one JSON line per upload and a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import shlex
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

FIXTURES = os.environ.get("SMPFLASH_ZEPHYR_FIXTURES", os.path.join(os.path.dirname(__file__), "../../../shared/zephyr-fixtures"))


def crc16(data: bytes) -> int:
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def console_frame(smp: bytes) -> bytes:
    packet = struct.pack(">H", len(smp) + 2) + smp + struct.pack(">H", crc16(smp))
    text = base64.b64encode(packet)
    out, first = b"", True
    while text:
        part, text = text[:124], text[124:]
        out += (b"\x06\x09" if first else b"\x04\x14") + part + b"\n"
        first = False
    return out


def smp(op: int, group: int, cmd: int, body: bytes, seq: int = 0) -> bytes:
    return struct.pack(">BBHHBB", op, 0, len(body), group, seq, cmd) + body


# {"d": "hi"} and {"boot_mode": 1}
ECHO = smp(2, 0, 0, bytes.fromhex("a16164626869"))
RESET_TO_RECOVERY = smp(2, 0, 5, bytes([0xA1, 0x69]) + b"boot_mode" + bytes([0x01]))


def answered(port: int, frame: bytes, timeout: float) -> bytes | None:
    """Sends one framed request and returns what came back within `timeout` (None: nothing)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(console_frame(frame))
            s.settimeout(0.2)
            got, end = b"", time.monotonic() + timeout
            while time.monotonic() < end:
                try:
                    chunk = s.recv(4096)
                except socket.timeout:
                    if b"\n" in got:
                        return got
                    continue
                if not chunk:
                    break
                got += chunk
            return got or None
    except OSError:
        return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_in_recovery(entry: dict) -> tuple[subprocess.Popen, int]:
    port = free_port()
    cmd = entry["qemu_cmd"].replace("<PORT>", str(port))
    # No shell between: killing the Popen must end QEMU itself.
    qemu = subprocess.Popen(shlex.split(cmd), cwd=FIXTURES, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = time.monotonic() + 60
    while time.monotonic() < end and not answered(port, ECHO, 1.5):
        time.sleep(0.5)
    answered(port, RESET_TO_RECOVERY, 1.5)
    time.sleep(1.0)
    # Recovery answers echo with rc 8 (no echo there): any answer means MCUboot listens.
    while time.monotonic() < end and not answered(port, ECHO, 1.5):
        time.sleep(0.5)
    if time.monotonic() >= end:
        qemu.kill()
        raise SystemExit("the device did not come up in serial recovery")
    return qemu, port


def upload_smpflash(binary: str, port: int, image: str, buf: int | None, extra: list[str]) -> dict:
    given = ["--buf-size", str(buf)] if buf else []
    out = subprocess.run(
        [binary, "--serial", f"tcp://127.0.0.1:{port}", *given, *extra, "--json", "image", "upload", image],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise SystemExit(f"smpflash failed: {out.stderr}")
    u = json.loads(out.stdout)["uploads"][0]
    return {"seconds": u["seconds"], "chunk": u["chunk"], "retransmits": u["retransmits"], "partial_accepts": u.get("partial_accepts")}


async def upload_smpclient_async(port: int, image: bytes, buf: int) -> dict:
    import serial.urlhandler.protocol_socket as sock
    import smpclient.transport.serial.common as common
    from smpclient import SMPClient
    from smpclient.transport.serial import SMPSerialTransport
    from smpclient.transport.serial.encoded import BufferSize

    # QEMU serves the UART on TCP; smpclient opens ports with pyserial's Serial, which takes
    # `socket://` URLs only through this class.
    class SocketSerial(sock.Serial):
        # A socket has no transmit queue to drain.
        out_waiting = 0

    common.Serial = SocketSerial
    client = SMPClient(SMPSerialTransport(BufferSize(buf_size=buf)), f"socket://127.0.0.1:{port}", timeout_s=5.0)
    await client.connect()
    started, offset, previous, chunk = time.perf_counter(), 0, 0, 0
    async for offset in client.upload(image, first_timeout_s=60):
        chunk, previous = max(chunk, offset - previous), offset
    seconds = time.perf_counter() - started
    await client.disconnect()
    if offset != len(image):
        raise SystemExit(f"smpclient ended at {offset} of {len(image)}")
    return {"seconds": seconds, "chunk": chunk}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smpflash", default="target/release/smpflash")
    p.add_argument("--config", default="serial_recovery_buf1024")
    p.add_argument("--size", type=int, default=65536)
    p.add_argument("--buf-size", type=int, default=1024)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--tools", default="smpflash,smpclient")
    p.add_argument("--smpflash-arg", action="append", default=[])
    args = p.parse_args()
    manifest = json.load(open(os.path.join(FIXTURES, "manifest.json")))
    entries = manifest if isinstance(manifest, list) else manifest.get("servers", list(manifest.values()))
    entry = next(e for e in entries if e.get("config") == args.config and e.get("target") == "mps2_an385")
    with tempfile.TemporaryDirectory() as tmp:
        payload = os.path.join(tmp, "payload.bin")
        with open(payload, "wb") as f:
            f.write(bytes((i * 7919 + 13) % 251 for i in range(args.size)))
        image = os.path.join(tmp, "app.bin")
        root = os.path.join(os.path.dirname(__file__), "../..")
        subprocess.run(
            ["imgtool", "sign", "-k", os.path.join(root, "tests/fixtures/keys/ecdsa-p256.pem"), "--header-size", "0x200",
             "--pad-header", "--align", "4", "--slot-size", "0x80000", "--version", "1.2.3", payload, image],
            check=True, capture_output=True,
        )
        results: dict[str, list[float]] = {}
        for run in range(1, args.repeat + 1):
            for tool in args.tools.split(","):
                qemu, port = start_in_recovery(entry)
                try:
                    if tool == "smpflash":
                        r = upload_smpflash(args.smpflash, port, image, args.buf_size, args.smpflash_arg)
                    elif tool == "smpflash-nobuf":
                        # Without --buf-size: the 384-byte buffer assumed for a device without params.
                        r = upload_smpflash(args.smpflash, port, image, None, args.smpflash_arg)
                    else:
                        r = asyncio.run(upload_smpclient_async(port, open(image, "rb").read(), args.buf_size))
                finally:
                    qemu.kill()
                    qemu.wait()
                r.update(tool=tool, run=run, bytes=os.path.getsize(image), config=args.config)
                print(json.dumps(r), flush=True)
                results.setdefault(tool, []).append(r["seconds"])
        for tool, secs in results.items():
            print(f"{tool}: median {statistics.median(secs):.2f} s (min {min(secs):.2f}, max {max(secs):.2f}) over {len(secs)}")


if __name__ == "__main__":
    sys.exit(main())
