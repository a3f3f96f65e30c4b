#!/usr/bin/env bash
# Builds the sample images the README's first command flashes, with MCUboot's own imgtool:
# an application update and an nRF5340 dfu_application.zip (application + network core).
# Run by `cargo xtask examples`; the outputs are committed so a fresh clone needs no Python.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
key="$here/../tests/fixtures/keys/ecdsa-p256.pem"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
command -v imgtool >/dev/null || { echo "imgtool not found: pip install -r tests/requirements.txt" >&2; exit 1; }

# Deterministic stand-ins for firmware: the sample images only have to be real MCUboot images.
python3 - "$work" <<'PY'
import random, sys
out = sys.argv[1]
for name, size, seed in [("app", 96 * 1024, 1), ("net", 48 * 1024, 2)]:
    with open(f"{out}/{name}.bin", "wb") as f:
        f.write(random.Random(seed).randbytes(size))
PY

sign() { imgtool sign --key "$key" --header-size 0x200 --pad-header --align 4 "$@"; }
sign --version 1.1.0 --slot-size 0xF0000 "$work/app.bin" "$here/app-update-v1.1.0.bin"
# Built for MCUboot RAM_LOAD (the header's RAM_LOAD flag, load address as on the mps2-an385
# fixtures): `smpflash sim --profile ram-load` and the planner's RAM_LOAD inference.
sign --version 1.2.0 --slot-size 0x80000 --load-addr 0x20050000 "$work/app.bin" "$here/app-update-v1.2.0-ram-load.bin"
sign --version 1.1.0 --slot-size 0xF0000 "$work/app.bin" "$work/app_update.bin"
sign --version 1.1.0 --slot-size 0x40000 "$work/net.bin" "$work/net_core_app_update.bin"

# The layout NCS writes: manifest.json listing each image with its image index.
python3 - "$work" "$here/dfu_application.zip" <<'PY'
import json, os, sys, zipfile
work, dest = sys.argv[1], sys.argv[2]
files = [
    ("application", "0", "app_update.bin", "nrf5340dk/nrf5340/cpuapp", 0x10000),
    ("network", "1", "net_core_app_update.bin", "nrf5340dk/nrf5340/cpunet", 0x1008000),
]
manifest = {"format-version": 1, "time": 1764000000, "name": "dfu_application", "files": [
    {"type": t, "board": b, "soc": "nRF5340", "load_address": addr, "image_index": idx,
     "slot_index_primary": str(2 * int(idx) + 1), "slot_index_secondary": str(2 * int(idx) + 2),
     "version_MCUBOOT": "1.1.0+0", "size": os.path.getsize(f"{work}/{f}"), "file": f,
     "modtime": 1764000000}
    for t, idx, f, b, addr in files]}
with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("manifest.json", json.dumps(manifest, indent=2))
    for _, _, f, _, _ in files:
        z.write(f"{work}/{f}", f)
PY
echo "wrote $here/app-update-v1.1.0.bin and $here/dfu_application.zip"
