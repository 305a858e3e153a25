#!/usr/bin/env python3
"""Train, once, the fixed classifier that scores decoded MNIST samples (issue #17's
Inception-Score analogue): scikit-learn's MLPClassifier (784-256-10, ReLU, Adam, seed 0) on
the labelled MNIST test digits in ../shared/data/mnist/ (t10k-images with t10k-labels), grey
levels scaled to [0, 1]. Writes benches/classifiers/mnist_mlp.safetensors in the layout
`vinf fit --classifier` reads (`layers.K.weight` [in, out], `layers.K.bias` [out], f32).

The file is kept in the repository, so the benchmark scores every model with the same
classifier; rerun this only to replace it. Needs numpy and scikit-learn (the anchors' venv:
`python benches/mnist_classifier.py`).
"""
import gzip
import json
import os
import struct
import sys

import numpy as np
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "..", "shared", "data", "mnist")
OUT = os.path.join(HERE, "classifiers", "mnist_mlp.safetensors")


def idx(path):
    raw = gzip.open(path).read()
    magic = struct.unpack(">I", raw[:4])[0]
    dims = magic & 0xFF
    shape = struct.unpack(">" + "I" * dims, raw[4 : 4 + 4 * dims])
    return np.frombuffer(raw[4 + 4 * dims :], dtype=np.uint8).reshape(shape)


def write_safetensors(path, tensors):
    """The safetensors format by hand: an 8-byte header length, a JSON header, the bytes."""
    header, blobs, offset = {}, [], 0
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def main():
    x = idx(os.path.join(DATA, "t10k-images-idx3-ubyte.gz")).reshape(-1, 784) / 255.0
    y = idx(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz"))
    xt, xv, yt, yv = train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)
    clf = MLPClassifier(hidden_layer_sizes=(256,), max_iter=60, random_state=0, early_stopping=False)
    clf.fit(xt, yt)
    acc = clf.score(xv, yv)
    print(f"held-out accuracy {acc:.4f} on {len(yv)} digits it did not train on", file=sys.stderr)
    # Refit on every labelled digit for the kept classifier.
    clf.fit(x, y)
    tensors = {}
    for k, (w, b) in enumerate(zip(clf.coefs_, clf.intercepts_)):
        tensors[f"layers.{k}.weight"] = w
        tensors[f"layers.{k}.bias"] = b
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    write_safetensors(OUT, tensors)
    print(f"wrote {OUT} (training accuracy {clf.score(x, y):.4f})", file=sys.stderr)


if __name__ == "__main__":
    main()
