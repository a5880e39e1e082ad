#!/usr/bin/python3
"""PyTorch reference benchmark for erserve.

Loads a BERT-family model directory (config.json + model.safetensors, F32; read
with the fixtures' small hand-written safetensors reader, tests/fixtures/gen.py,
no `transformers`/`safetensors` packages) and times a full encoder forward (embeddings + all layers) in
float32 under torch.inference_mode(), on a padding-free batch of B x S random
ids, written the way a user would: F.embedding, F.layer_norm, F.linear,
torch.matmul attention, F.softmax, F.gelu.

    /usr/bin/python3 tests/bench/torch_ref.py --model DIR --batch 8 --seq 128 --threads 1

Prints one JSON line on stdout:
    {"batch","seq","threads","ms_per_forward","tokens_per_s"}   (median of --iters)
and torch's BLAS build info on stderr.

Threads: Debian's torch calls the system libblas.so.3 (OpenBLAS when
libopenblas0-pthread is installed), whose thread pool is NOT governed by
torch.set_num_threads; so OPENBLAS_NUM_THREADS / OMP_NUM_THREADS are set to
--threads before torch is imported, and torch.set_num_threads(T) as well.  OPENBLAS_CORETYPE is passed through
untouched: on VMs that hide the CPU model OpenBLAS 0.3.21 may fall back to
"Prescott" (SSE3) kernels, about 4x slower; the core name is printed on stderr
so that erserve and torch can be compared on the same kernels.

--write-random-model DIR writes a random bert-base-shaped checkpoint
(12 layers, 768 hidden, 12 heads, FFN 3072, vocab 30522) there and exits.
"""

import argparse
import json
import math
import os
import sys
import time


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", help="model directory (config.json + model.safetensors)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--ids", metavar="FILE",
                    help="int32 little-endian token ids [batch * seq] to use instead of random ones")
    ap.add_argument("--dump", metavar="FILE",
                    help="write the last hidden states [batch * seq, hidden] as float32 here")
    ap.add_argument("--float64", action="store_true",
                    help="compute in float64 (the rounding reference for --dump)")
    ap.add_argument("--export-onnx", metavar="FILE",
                    help="write the same forward as an ONNX graph (input ids [batch, seq] int64, "
                         "output hidden [batch, seq, hidden]) and exit")
    ap.add_argument("--write-random-model", metavar="DIR",
                    help="write a random bert-base-shaped model to DIR and exit")
    return ap.parse_args()


ARGS = parse_args()
# Must happen before torch (and thus OpenBLAS) is loaded.
for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = str(ARGS.threads)

import torch  # noqa: E402

# The fixtures' safetensors reader and writer (tests/fixtures/gen.py), after
# the thread settings above: importing gen imports torch.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures"))
from gen import read_safetensors, safetensors_bytes  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def write_safetensors(path, tensors):
    with open(path, "wb") as f:
        f.write(safetensors_bytes(tensors, {"format": "pt"}))


def write_random_model(d, seed=0):
    H, L, NH, I, V, P = 768, 12, 12, 3072, 30522, 512
    g = torch.Generator().manual_seed(seed)
    r = lambda *s, std=0.02: torch.randn(*s, generator=g) * std
    t = {
        "bert.embeddings.word_embeddings.weight": r(V, H),
        "bert.embeddings.position_embeddings.weight": r(P, H),
        "bert.embeddings.token_type_embeddings.weight": r(2, H),
        "bert.embeddings.LayerNorm.weight": 1 + r(H, std=0.1),
        "bert.embeddings.LayerNorm.bias": r(H, std=0.1),
    }
    for i in range(L):
        p = "bert.encoder.layer.%d." % i
        for n, (o, k) in {"attention.self.query": (H, H), "attention.self.key": (H, H),
                          "attention.self.value": (H, H), "attention.output.dense": (H, H),
                          "intermediate.dense": (I, H), "output.dense": (H, I)}.items():
            t[p + n + ".weight"] = r(o, k, std=1 / math.sqrt(k))
            t[p + n + ".bias"] = r(o, std=0.05)
        for n in ("attention.output.LayerNorm", "output.LayerNorm"):
            t[p + n + ".weight"] = 1 + r(H, std=0.1)
            t[p + n + ".bias"] = r(H, std=0.1)
    t["bert.pooler.dense.weight"] = r(H, H, std=1 / math.sqrt(H))
    t["bert.pooler.dense.bias"] = r(H, std=0.05)
    os.makedirs(d, exist_ok=True)
    cfg = {"architectures": ["BertModel"], "attention_probs_dropout_prob": 0.1,
           "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "hidden_size": H,
           "initializer_range": 0.02, "intermediate_size": I, "layer_norm_eps": 1e-12,
           "max_position_embeddings": P, "model_type": "bert", "num_attention_heads": NH,
           "num_hidden_layers": L, "pad_token_id": 0, "position_embedding_type": "absolute",
           "torch_dtype": "float32", "type_vocab_size": 2, "vocab_size": V}
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    write_safetensors(os.path.join(d, "model.safetensors"), t)


def act(name):
    if name == "gelu":
        return F.gelu
    if name in ("gelu_new", "gelu_pytorch_tanh"):
        return lambda x: F.gelu(x, approximate="tanh")
    if name == "relu":
        return F.relu
    raise ValueError("hidden_act %s" % name)


class Encoder:
    def __init__(self, d):
        cfg = json.load(open(os.path.join(d, "config.json")))
        if cfg.get("model_type") not in ("bert", "roberta", "xlm-roberta", "electra"):
            raise SystemExit("torch_ref: only BERT-family models (model_type %r)" % cfg.get("model_type"))
        w = read_safetensors(os.path.join(d, "model.safetensors"))
        pre = ""
        for cand in ("bert.", "roberta.", "electra.", ""):
            if cand + "embeddings.word_embeddings.weight" in w:
                pre = cand
                break
        g = lambda n: w[pre + n].float().contiguous()
        self.H = cfg["hidden_size"]
        self.nh = cfg["num_attention_heads"]
        self.eps = cfg.get("layer_norm_eps", 1e-12)
        self.act = act(cfg.get("hidden_act", "gelu"))
        self.vocab = cfg["vocab_size"]
        self.pos_off = cfg.get("pad_token_id", 1) + 1 if cfg["model_type"] in ("roberta", "xlm-roberta") else 0
        self.wemb = g("embeddings.word_embeddings.weight")
        self.pemb = g("embeddings.position_embeddings.weight")
        self.temb = g("embeddings.token_type_embeddings.weight")
        self.eln = (g("embeddings.LayerNorm.weight"), g("embeddings.LayerNorm.bias"))
        self.proj = None
        if pre + "embeddings_project.weight" in w:
            self.proj = (g("embeddings_project.weight"), g("embeddings_project.bias"))
        self.layers = []
        for i in range(cfg["num_hidden_layers"]):
            p = "encoder.layer.%d." % i
            L = {}
            for n in ("attention.self.query", "attention.self.key", "attention.self.value",
                      "attention.output.dense", "attention.output.LayerNorm",
                      "intermediate.dense", "output.dense", "output.LayerNorm"):
                L[n] = (g(p + n + ".weight"), g(p + n + ".bias"))
            self.layers.append(L)

    def to_float64(self):
        for k, v in list(vars(self).items()):
            if isinstance(v, torch.Tensor):
                setattr(self, k, v.double())
            elif isinstance(v, tuple):
                setattr(self, k, tuple(t.double() for t in v))
        self.layers = [{n: tuple(t.double() for t in w) for n, w in L.items()} for L in self.layers]

    def forward(self, ids):
        B, S = ids.shape
        H, nh = self.H, self.nh
        d = H // nh
        pos = torch.arange(self.pos_off, self.pos_off + S)
        x = F.embedding(ids, self.wemb) + self.temb[0] + F.embedding(pos, self.pemb)[None]
        x = F.layer_norm(x, (int(self.wemb.shape[1]),), *self.eln, self.eps)
        if self.proj is not None:
            x = F.linear(x, *self.proj)
        scale = 1.0 / math.sqrt(d)
        for L in self.layers:
            q = F.linear(x, *L["attention.self.query"]).view(B, S, nh, d).transpose(1, 2)
            k = F.linear(x, *L["attention.self.key"]).view(B, S, nh, d).transpose(1, 2)
            v = F.linear(x, *L["attention.self.value"]).view(B, S, nh, d).transpose(1, 2)
            a = F.softmax(torch.matmul(q, k.transpose(-1, -2)) * scale, dim=-1)
            c = torch.matmul(a, v).transpose(1, 2).reshape(B, S, H)
            x = F.layer_norm(F.linear(c, *L["attention.output.dense"]) + x, (H,),
                             *L["attention.output.LayerNorm"], self.eps)
            h = self.act(F.linear(x, *L["intermediate.dense"]))
            x = F.layer_norm(F.linear(h, *L["output.dense"]) + x, (H,),
                             *L["output.LayerNorm"], self.eps)
        return x


def export_onnx(enc, path):
    """The same forward as a graph for ONNX Runtime (opset 14, dynamic batch
    and sequence); weights become initializers."""

    class Wrap(torch.nn.Module):
        def forward(self, ids):
            return enc.forward(ids)

    ids = torch.randint(5, enc.vocab, (2, 16))
    with torch.no_grad():
        torch.onnx.export(Wrap(), (ids,), path, input_names=["input_ids"],
                          output_names=["hidden"], opset_version=14,
                          dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                                        "hidden": {0: "batch", 1: "seq"}})
    print("wrote %s" % path, file=sys.stderr)


def openblas_corename():
    """Kernel set chosen by the OpenBLAS behind libblas.so.3 (None if not OpenBLAS)."""
    import ctypes
    import ctypes.util
    for lib in ("libblas.so.3", ctypes.util.find_library("openblas")):
        if not lib:
            continue
        try:
            f = ctypes.CDLL(lib).openblas_get_corename
        except (OSError, AttributeError):
            continue
        f.restype = ctypes.c_char_p
        return f().decode()
    return None


def main():
    a = ARGS
    if a.write_random_model:
        write_random_model(a.write_random_model, a.seed)
        return
    if not a.model:
        raise SystemExit("torch_ref: --model DIR is required")
    torch.set_num_threads(a.threads)
    blas = [l.strip() for l in torch.__config__.show().splitlines() if "BLAS" in l]
    print("torch %s; threads=%d; %s; libblas.so.3 -> %s" % (
        torch.__version__, torch.get_num_threads(), " ".join(blas)[:400],
        os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")), file=sys.stderr)
    core = openblas_corename()
    if core:
        print("OpenBLAS core: %s (OPENBLAS_CORETYPE=%s)" % (core, os.environ.get("OPENBLAS_CORETYPE", "")),
              file=sys.stderr)
        if core.lower() in ("prescott", "core2", "nehalem", "generic"):
            print("warning: OpenBLAS did not recognise this CPU and uses slow %s kernels; "
                  "set OPENBLAS_CORETYPE (e.g. SkylakeX / Haswell) for erserve and torch alike" % core,
                  file=sys.stderr)
    enc = Encoder(a.model)
    if a.export_onnx:
        export_onnx(enc, a.export_onnx)
        return
    if a.float64:
        enc.to_float64()
    g = torch.Generator().manual_seed(a.seed)
    ids = torch.randint(5, enc.vocab, (a.batch, a.seq), generator=g)
    if a.ids:
        import numpy
        ids = torch.from_numpy(numpy.fromfile(a.ids, dtype="<i4").astype("int64"))
        ids = ids.view(a.batch, a.seq)
    times = []
    with torch.inference_mode():
        for i in range(a.warmup + a.iters):
            t0 = time.perf_counter()
            y = enc.forward(ids)
            t1 = time.perf_counter()
            if i >= a.warmup:
                times.append(t1 - t0)
    assert torch.isfinite(y).all()
    if a.dump:
        y.float().reshape(-1).numpy().astype("<f4").tofile(a.dump)
    times.sort()
    n = len(times)
    med = times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2])
    print(json.dumps({"batch": a.batch, "seq": a.seq, "threads": a.threads,
                      "ms_per_forward": round(med * 1e3, 3),
                      "tokens_per_s": round(a.batch * a.seq / med, 1)}))


if __name__ == "__main__":
    main()
