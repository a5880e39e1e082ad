#!/usr/bin/env python3
"""Copies an AdapterHub adapter directory and damages or changes it, for the
refusal and sharing tests (test_adapter_bn.c, tests/server/test_tasks.c).
Standard library only (CI has no torch): safetensors is an 8-byte
little-endian header length, a JSON header, then the tensors' bytes.

  bn_edit.py SRC DST [edit ...]
  config KEY JSON    adapter_config.json's "config"[KEY] = JSON
  top KEY JSON       adapter_config.json[KEY] = JSON
  deltop KEY         deletes adapter_config.json[KEY]
  head KEY JSON      head_config.json's "config"[KEY] = JSON
  drop SUBSTR        removes the saved adapter tensors whose names contain SUBSTR
  shrink SUBSTR      the first adapter tensor containing SUBSTR loses its last row
  add NAME           adds an F32 tensor NAME of shape [4] to adapter.safetensors
  rm FILE            deletes DST/FILE
  touch FILE         creates an empty DST/FILE
"""
import json
import os
import shutil
import struct
import sys


def read_st(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    data = raw[8 + n:]
    out = {}
    for name, t in header.items():
        a, b = t["data_offsets"]
        out[name] = (t["dtype"], t["shape"], data[a:b])
    return out


def write_st(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        dtype, shape, blob = tensors[name]
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(blob)]}
        blobs.append(blob)
        off += len(blob)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def edit_json(path, key, value, inner):
    with open(path) as f:
        c = json.load(f)
    (c["config"] if inner else c)[key] = json.loads(value)
    with open(path, "w") as f:
        json.dump(c, f, indent=2, sort_keys=True)


def edit_tensors(path, op, arg):
    ts = read_st(path)
    if op == "drop":
        ts = {k: v for k, v in ts.items() if arg not in k}
    elif op == "shrink":
        name = sorted(k for k in ts if arg in k)[0]
        dtype, shape, blob = ts[name]
        row = len(blob) // shape[0]
        ts[name] = (dtype, [shape[0] - 1] + shape[1:], blob[:len(blob) - row])
    elif op == "add":
        ts[arg] = ("F32", [4], struct.pack("<4f", 0, 0, 0, 0))
    write_st(path, ts)


def main(argv):
    src, dst, edits = argv[1], argv[2], argv[3:]
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    i = 0
    while i < len(edits):
        op = edits[i]
        if op in ("config", "top", "head"):
            name = "head_config.json" if op == "head" else "adapter_config.json"
            edit_json(os.path.join(dst, name), edits[i + 1], edits[i + 2], op != "top")
            i += 3
            continue
        arg = edits[i + 1]
        if op in ("drop", "shrink", "add"):
            edit_tensors(os.path.join(dst, "adapter.safetensors"), op, arg)
        elif op == "deltop":
            path = os.path.join(dst, "adapter_config.json")
            with open(path) as f:
                c = json.load(f)
            del c[arg]
            with open(path, "w") as f:
                json.dump(c, f, indent=2, sort_keys=True)
        elif op == "rm":
            os.remove(os.path.join(dst, arg))
        elif op == "touch":
            open(os.path.join(dst, arg), "w").close()
        else:
            sys.exit("bn_edit.py: unknown edit " + op)
        i += 2


if __name__ == "__main__":
    main(sys.argv)
