"""What the interop scripts share: their step/check reporting and reading an MCUboot image's hash
from the file, independently of the device, to check what the device reports."""

from __future__ import annotations

import struct
import sys
from typing import NoReturn

# MCUboot image layout (bootutil/image.h).
IMAGE_MAGIC = 0x96F3B83D
TLV_INFO_MAGIC = 0x6907
TLV_PROT_INFO_MAGIC = 0x6908
TLV_SHA256 = 0x10


class Failure(Exception):
    """A step did not go as a Zephyr/MCUboot device would have it go."""


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failure(message)


def fail(message: str) -> NoReturn:
    """Ends the script with the reason the Rust test shows."""
    print(f"FAILED: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def mcuboot_hash(image: bytes) -> bytes:
    """The SHA-256 TLV of an MCUboot image, which img_mgmt reports as the slot's hash."""
    magic, _load, hdr_size, _protect_size, img_size = struct.unpack_from("<IIHHI", image, 0)
    if magic != IMAGE_MAGIC:
        raise Failure(f"the image file does not start with MCUboot's magic ({magic:#x})")
    at = hdr_size + img_size
    while at + 4 <= len(image):
        # Each area's size counts its own 4-byte info header.
        area_magic, area_len = struct.unpack_from("<HH", image, at)
        if area_magic not in (TLV_INFO_MAGIC, TLV_PROT_INFO_MAGIC):
            break
        end = at + area_len
        pos = at + 4
        while pos + 4 <= end:
            kind, length = struct.unpack_from("<HH", image, pos)
            if kind == TLV_SHA256:
                return image[pos + 4 : pos + 4 + length]
            pos += 4 + length
        at = end
    raise Failure("the image file has no SHA-256 TLV")
