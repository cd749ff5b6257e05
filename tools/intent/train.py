#!/usr/bin/python3
"""Trains the reply-intent model offline and writes config/intent_model.bin.

    tools/intent/train.py BUILD_DIR [--cv] [--out FILE]

Features come from BUILD_DIR/tools/intent_eval (`make BUILD=... 
BUILD_DIR/tools/intent_eval`), i.e. from the daemon's own code: the reply as
a MIME part, its first text, stripped of quotes and signatures, folded, and
hashed into character n-gram and word buckets by wb_intent_features. Only
replies of the "train" split are read; the held-out split is scored by
`make bench-intent` alone.

The model is a multinomial logistic regression (softmax over the four
intents, L2-regularised, AdaGrad), stdlib only. --cv prints 5-fold
cross-validated accuracy on the training split for a few settings (how the
shipped ones were chosen) before training the final model.

File format (little-endian), read by lib/engage/intent_model.c:
  "WBIM", u32 version 1, u32 classes 4, u32 bits, u32 nmin, u32 nmax,
  u32 flags (1 words, 2 word pairs), u32 max_bytes, f32 scale, f32 bias[4],
  i16 weight[2^bits][4] (weight = value * scale), u32 FNV-1a of all before.
"""
import argparse
import json
import math
import os
import random
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CORPUS = os.path.join(ROOT, "tests", "corpus", "replies.json")
RULES = os.path.join(ROOT, "config", "intent.json")
CLASSES = ["neutral", "interested", "not_interested", "unsubscribe"]
K = len(CLASSES)

# The shipped settings (chosen with --cv on the training split).
DEFAULT = dict(bits=15, nmin=2, nmax=5, flags=3, max_bytes=2048, l2=1e-4, epochs=40, lr=0.5,
               unsub_weight=2.0)


def features(build, p):
    """Runs intent_eval over the corpus with rules that name no model (the
    model being trained must not be needed to compute its own input)."""
    with open(RULES, encoding="utf-8") as f:
        rules = json.load(f)
    rules.pop("model", None)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "intent.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(rules, f)
        out = subprocess.run([os.path.join(build, "tools", "intent_eval"), "features", CORPUS, path,
                              str(p["bits"]), str(p["nmin"]), str(p["nmax"]), str(p["flags"]),
                              str(p["max_bytes"])], check=True, capture_output=True, text=True).stdout
    rows = [json.loads(l) for l in out.splitlines()]
    return [r for r in rows if r["split"] == "train"]


def train(rows, p, seed=1):
    w = {}
    g = {}  # AdaGrad accumulators
    b = [0.0] * K
    gb = [1e-8] * K
    rng = random.Random(seed)
    order = list(range(len(rows)))
    for _ in range(p["epochs"]):
        rng.shuffle(order)
        for i in order:
            r = rows[i]
            y = CLASSES.index(r["intent"])
            cw = p["unsub_weight"] if y == 3 else 1.0
            z = b[:]
            for j, v in r["f"]:
                wj = w.get(j)
                if wj:
                    for c in range(K):
                        z[c] += wj[c] * v
            m = max(z)
            e = [math.exp(x - m) for x in z]
            s = sum(e)
            grad = [cw * (e[c] / s - (c == y)) for c in range(K)]
            for c in range(K):
                gb[c] += grad[c] * grad[c]
                b[c] -= p["lr"] * grad[c] / math.sqrt(gb[c])
            for j, v in r["f"]:
                wj = w.setdefault(j, [0.0] * K)
                gj = g.setdefault(j, [1e-8] * K)
                for c in range(K):
                    d = grad[c] * v + p["l2"] * wj[c]
                    gj[c] += d * d
                    wj[c] -= p["lr"] * d / math.sqrt(gj[c])
    return w, b


def predict(model, r):
    w, b = model
    z = b[:]
    for j, v in r["f"]:
        wj = w.get(j)
        if wj:
            for c in range(K):
                z[c] += wj[c] * v
    return max(range(K), key=lambda c: z[c])


def cv(rows, p, folds=5):
    rng = random.Random(7)
    idx = list(range(len(rows)))
    rng.shuffle(idx)
    ok = unsub = unsub_ok = 0
    for f in range(folds):
        test = set(idx[f::folds])
        model = train([rows[i] for i in idx if i not in test], p)
        for i in test:
            y = CLASSES.index(rows[i]["intent"])
            got = predict(model, rows[i])
            ok += got == y
            if y == 3:
                unsub += 1
                unsub_ok += got == 3
    return ok / len(rows), unsub_ok / max(unsub, 1)


def fnv(data):
    h = 2166136261
    for c in data:
        h = ((h ^ c) * 16777619) & 0xFFFFFFFF
    return h


def write(path, model, p):
    w, b = model
    n = 1 << p["bits"]
    top = max((abs(x) for ws in w.values() for x in ws), default=1.0) or 1.0
    scale = top / 32767.0
    head = struct.pack("<4s7If4f", b"WBIM", 1, K, p["bits"], p["nmin"], p["nmax"], p["flags"],
                       p["max_bytes"], scale, *b)
    body = bytearray(2 * K * n)
    for j, ws in w.items():
        for c in range(K):
            struct.pack_into("<h", body, 2 * (j * K + c), max(-32767, min(32767, round(ws[c] / scale))))
    data = head + bytes(body)
    data += struct.pack("<I", fnv(data))
    with open(path + ".tmp", "wb") as f:
        f.write(data)
    os.replace(path + ".tmp", path)
    return len(data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--cv", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "config", "intent_model.bin"))
    a = ap.parse_args()
    if a.cv:
        grid = [dict(DEFAULT),
                dict(DEFAULT, flags=0),
                dict(DEFAULT, nmin=1, nmax=4),
                dict(DEFAULT, nmin=3, nmax=6),
                dict(DEFAULT, l2=1e-3),
                dict(DEFAULT, l2=1e-5),
                dict(DEFAULT, bits=14),
                dict(DEFAULT, bits=16),
                dict(DEFAULT, unsub_weight=1.0),
                dict(DEFAULT, epochs=20)]
        cache = {}
        for p in grid:
            key = (p["bits"], p["nmin"], p["nmax"], p["flags"], p["max_bytes"])
            if key not in cache:
                cache[key] = features(a.build, p)
            acc, ur = cv(cache[key], p)
            print(f"cv {acc:.3f} unsub recall {ur:.3f}  {p}", flush=True)
    p = DEFAULT
    rows = features(a.build, p)
    model = train(rows, p)
    train_acc = sum(predict(model, r) == CLASSES.index(r["intent"]) for r in rows) / len(rows)
    size = write(a.out, model, p)
    print(f"trained on {len(rows)} replies (train split), fit {train_acc:.3f}; wrote {a.out} ({size} bytes)")


if __name__ == "__main__":
    sys.exit(main())
