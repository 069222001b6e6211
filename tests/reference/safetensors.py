"""Read and write safetensors files (numpy only), single or sharded.

Layout (https://huggingface.co/docs/safetensors): u64 little-endian header
length N, then N bytes of JSON {name: {"dtype", "shape", "data_offsets":
[begin, end]}, "__metadata__": {str: str}}, then the data block; offsets are
relative to the start of the data block. Tensors are little-endian, row-major.

Only F32, F16 and BF16 are handled: they are what LLaMA-family checkpoints
ship. BF16 has no numpy dtype, so it travels as its raw uint16 bits and is
widened to float32 (exactly) on read.
"""

import json
import os
import struct

import numpy as np

DTYPES = ("F32", "F16", "BF16")
_ITEMSIZE = {"F32": 4, "F16": 2, "BF16": 2}


# ----------------------------------------------------------------- conversions

def f32_to_bf16_bits(x):
    """float32 array -> uint16 bfloat16 bits, round-to-nearest-even (NaN kept NaN)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    u = x.view(np.uint32).astype(np.uint64)
    rounding = ((u >> 16) & 1) + 0x7FFF
    out = ((u + rounding) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        out[nan] = ((u[nan] >> 16) | 0x40).astype(np.uint16)
    return out


def bf16_bits_to_f32(b):
    b = np.asarray(b, dtype=np.uint16)
    return (b.astype(np.uint32) << 16).view(np.float32)


def encode(array, dtype):
    """float array -> little-endian bytes in `dtype` ("F32" | "F16" | "BF16")."""
    a = np.asarray(array)
    if dtype == "F32":
        return np.ascontiguousarray(a, dtype="<f4").tobytes()
    if dtype == "F16":
        # f64 -> f16 directly could round twice differently from the f32 path
        # every other tool takes, so always go through float32.
        return np.ascontiguousarray(a.astype(np.float32).astype("<f2")).tobytes()
    if dtype == "BF16":
        return f32_to_bf16_bits(a.astype(np.float32)).astype("<u2").tobytes()
    raise ValueError("unsupported safetensors dtype %r" % (dtype,))


def decode(buf, dtype, shape):
    """bytes -> float32 array (exact for all three dtypes)."""
    if dtype == "F32":
        a = np.frombuffer(buf, dtype="<f4").astype(np.float32)
    elif dtype == "F16":
        a = np.frombuffer(buf, dtype="<f2").astype(np.float32)
    elif dtype == "BF16":
        a = bf16_bits_to_f32(np.frombuffer(buf, dtype="<u2"))
    else:
        raise ValueError("unsupported safetensors dtype %r" % (dtype,))
    return a.reshape(shape)


# ---------------------------------------------------------------------- read

def read_header(path):
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError("%s: shorter than the 8-byte header length" % path)
        (n,) = struct.unpack("<Q", raw)
        size = os.fstat(f.fileno()).st_size
        if n > size - 8:
            raise ValueError("%s: header length %d runs past the file (%d bytes)" % (path, n, size))
        header = json.loads(f.read(n).decode("utf-8"))
    return header, 8 + n, size


def read(path):
    """-> (dict name -> float32 ndarray, metadata dict, dict name -> source dtype)."""
    header, data_start, size = read_header(path)
    meta = header.pop("__metadata__", None) or {}
    tensors, dtypes = {}, {}
    with open(path, "rb") as f:
        for name, info in header.items():
            dtype, shape = info["dtype"], [int(s) for s in info["shape"]]
            begin, end = (int(v) for v in info["data_offsets"])
            count = int(np.prod(shape, dtype=np.int64)) if shape else 1
            if dtype not in _ITEMSIZE:
                raise ValueError("%s: tensor %s: unsupported dtype %s" % (path, name, dtype))
            if end - begin != count * _ITEMSIZE[dtype] or begin < 0 or data_start + end > size:
                raise ValueError("%s: tensor %s: bad data_offsets %r" % (path, name, info["data_offsets"]))
            f.seek(data_start + begin)
            tensors[name] = decode(f.read(end - begin), dtype, shape)
            dtypes[name] = dtype
    return tensors, meta, dtypes


def read_dir(model_dir):
    """All tensors of a HF model directory: model.safetensors, or the shards
    named by model.safetensors.index.json."""
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            weight_map = json.load(f)["weight_map"]
        tensors, dtypes = {}, {}
        for shard in sorted(set(weight_map.values())):
            t, _, d = read(os.path.join(model_dir, shard))
            tensors.update(t)
            dtypes.update(d)
        missing = set(weight_map) - set(tensors)
        if missing:
            raise ValueError("%s: tensors named in the index but absent from the shards: %s"
                             % (index, sorted(missing)[:5]))
        return tensors, dtypes
    t, _, d = read(os.path.join(model_dir, "model.safetensors"))
    return t, d


# --------------------------------------------------------------------- write

def _serialize(tensors, dtype, metadata):
    """-> bytes of one safetensors file. Tensors are written in name order,
    back to back; the header is space-padded to a multiple of 8 bytes like the
    reference writer does (so the data block starts 8-aligned)."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        blob = encode(tensors[name], dtype)
        header[name] = {"dtype": dtype, "shape": list(np.shape(tensors[name])),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * (-len(hjson) % 8)  # pad with spaces, as the spec allows
    return struct.pack("<Q", len(hjson)) + hjson + b"".join(blobs), offset


def write(path, tensors, dtype="F32", metadata=None):
    data, _ = _serialize(tensors, dtype, metadata if metadata is not None else {"format": "pt"})
    with open(path, "wb") as f:
        f.write(data)


def write_sharded(model_dir, tensors, dtype="F32", shards=1, metadata=None):
    """Write model.safetensors (shards == 1) or model-0000k-of-0000n.safetensors
    plus model.safetensors.index.json. Tensors are dealt to shards in name
    order, balancing bytes."""
    if shards <= 1:
        write(os.path.join(model_dir, "model.safetensors"), tensors, dtype, metadata)
        return ["model.safetensors"]
    names = sorted(tensors)
    shards = min(shards, len(names))
    total = sum(np.size(tensors[n]) * _ITEMSIZE[dtype] for n in names)
    groups, cur, cur_bytes = [], [], 0
    target = total / shards
    for i, n in enumerate(names):
        cur.append(n)
        cur_bytes += np.size(tensors[n]) * _ITEMSIZE[dtype]
        left_names = len(names) - i - 1
        left_groups = shards - len(groups) - 1
        if left_groups > 0 and (cur_bytes >= target or left_names == left_groups):
            groups.append(cur)
            cur, cur_bytes = [], 0
    if cur:
        groups.append(cur)
    files, weight_map = [], {}
    for k, g in enumerate(groups):
        fname = "model-%05d-of-%05d.safetensors" % (k + 1, len(groups))
        write(os.path.join(model_dir, fname), {n: tensors[n] for n in g}, dtype, metadata)
        files.append(fname)
        for n in g:
            weight_map[n] = fname
    with open(os.path.join(model_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": int(total)}, "weight_map": weight_map}, f, indent=2,
                  sort_keys=True)
        f.write("\n")
    return files
