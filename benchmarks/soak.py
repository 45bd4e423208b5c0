"""Reliability soak: kill `generate` at random moments, damage folders, feed bad input; nothing may be lost.

    python benchmarks/soak.py [--kills 10] [--images 3000] [--seed 0]

1. kills: `generate` is SIGKILLed at random moments, then rerun until it finishes; after every kill no
   partial shard may be visible under data/, and the final folder must equal an uninterrupted run's byte
   for byte (shards, and the manifest without its timing block);
2. corruptions: each kind of damage is applied to a copy of the folder and `validate` must name it;
3. bad inputs: each must give exit code 2, one line on stderr, no traceback, and leave files untouched.
Writes benchmarks/soak.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
CLI = [sys.executable, "-m", "cifar10_fgs.cli.main"]


def folder_state(d: Path) -> dict[str, bytes]:
    out = {str(p.relative_to(d)): p.read_bytes() for p in sorted((d / "data").glob("*"))}
    manifest = json.loads((d / "generation.json").read_text())
    manifest.pop("timing", None)
    out["generation.json"] = json.dumps(manifest, sort_keys=True).encode()
    return out


def make_inputs(root: Path, n: int, seed: int) -> tuple[Path, Path]:
    import keras
    from PIL import Image

    from cifar10_fgs.data import CLASS_NAMES
    from cifar10_fgs.models.inference import predict_logits

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(10),
        ]
    )
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = predict_logits(model, images).argmax(axis=1)
    for i, (img, lab) in enumerate(zip(images, labels)):
        d = root / "src" / "test" / CLASS_NAMES[lab]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"{i:05d}.png")
    model.save(root / "m.keras")
    return root / "src", root / "m.keras"


def kills(src: Path, model: Path, work: Path, n_kills: int, rng: random.Random) -> dict:
    cmd = [
        *CLI,
        "generate",
        "--source-model",
        str(model),
        "--cifar10",
        str(src),
        "--split",
        "test",
        "--rows-per-shard",
        "200",
        "--batch-size",
        "64",
        "-q",
    ]
    ref = work / "ref"
    t = time.time()
    subprocess.run([*cmd, "--out", str(ref)], check=True, capture_output=True)
    full_seconds = time.time() - t
    target = work / "killed"
    survived = partial_seen = lost = cycles = 0
    identical = True
    attempts = 0
    while survived < n_kills and attempts < 4 * n_kills:
        attempts += 1
        proc = subprocess.Popen([*cmd, "--out", str(target)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, max(0.6, 0.9 * full_seconds)))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            survived += 1
        proc.wait()
        if (target / "data").exists():
            partial_seen += sum(1 for p in (target / "data").iterdir() if p.suffix != ".arrow")
        if proc.returncode == 0:  # the folder finished between kills: check it, then start a new cycle
            a, b = folder_state(target), folder_state(ref)
            identical &= a == b
            lost += sum(len(v) for k, v in b.items() if a.get(k) != v)
            cycles += 1
            shutil.rmtree(target)
    reruns = 0
    while True:
        reruns += 1
        if subprocess.run([*cmd, "--out", str(target)], capture_output=True).returncode == 0:
            break
    a, b = folder_state(target), folder_state(ref)
    identical &= a == b
    lost += sum(len(v) for k, v in b.items() if a.get(k) != v)
    return {
        "kills": survived,
        "partial_shards_seen": partial_seen,
        "final_reruns": reruns,
        "cycles": cycles + 1,
        "identical": identical,
        "bytes_lost": lost,
        "uninterrupted_seconds": round(full_seconds, 1),
    }


def corruptions(ref: Path, model: Path, work: Path) -> dict:
    from cifar10_fgs.validate import validate_dataset

    shard = sorted((ref / "data").iterdir())[0].name

    def truncate(d):
        p = d / "data" / shard
        p.write_bytes(p.read_bytes()[:-100])

    def flip(d):
        p = d / "data" / shard
        b = bytearray(p.read_bytes())
        b[len(b) // 2] ^= 0xFF
        p.write_bytes(bytes(b))

    def missing(d):
        (d / "data" / shard).unlink()

    def foreign(d):
        (d / "data" / "extra.arrow").write_bytes(b"not a shard")

    def other_model(d):
        return "other"

    cases = {
        "truncated shard": truncate,
        "flipped byte": flip,
        "missing shard": missing,
        "foreign file": foreign,
        "different model": other_model,
    }
    other = work / "other.keras"
    import keras

    keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)]).save(other)
    detected = {}
    for name, damage in cases.items():
        d = work / f"corrupt-{name.replace(' ', '-')}"
        shutil.copytree(ref, d)
        use = other if damage(d) == "other" else model
        detected[name] = not validate_dataset(d, use).ok
    return {"tried": len(cases), "detected": sum(detected.values()), "cases": detected}


def bad_inputs(src: Path, model: Path, ref: Path, work: Path) -> dict:
    from cifar10_fgs.publish.card import write_card

    write_card(ref)  # so that upload gets as far as asking for a token
    before = folder_state(ref)
    notkeras = work / "not.keras"
    notkeras.write_text("hello")
    truncated = work / "trunc.tar.gz"
    subprocess.run(["tar", "czf", str(truncated), "-C", str(src.parent), "src"], check=True)
    truncated.write_bytes(truncated.read_bytes()[:2000])
    gen = [*CLI, "generate", "--source-model", str(model), "--cifar10", str(src), "--split", "test", "-q"]
    cases = {
        "nonexistent source": [
            *CLI,
            "generate",
            "--source-model",
            str(model),
            "--cifar10",
            str(work / "nope"),
            "--out",
            str(work / "o1"),
        ],
        "truncated tarball": [
            *CLI,
            "generate",
            "--source-model",
            str(model),
            "--cifar10",
            str(truncated),
            "--out",
            str(work / "o2"),
        ],
        "not a keras model": [
            *CLI,
            "generate",
            "--source-model",
            str(notkeras),
            "--cifar10",
            str(src),
            "--out",
            str(work / "o3"),
        ],
        "step 0": [*gen, "--step", "0", "--out", str(work / "o4")],
        "step 1": [*gen, "--step", "1", "--out", str(work / "o5")],
        "max-iterations 0": [*gen, "--max-iterations", "0", "--out", str(work / "o6")],
        "unknown split": [
            *CLI,
            "generate",
            "--source-model",
            str(model),
            "--cifar10",
            str(src),
            "--split",
            "val",
            "--out",
            str(work / "o7"),
        ],
        "limit larger than split": [*gen, "--limit", "10000000", "--out", str(work / "o8")],
        "folder made with other settings": [
            *gen,
            "--rows-per-shard",
            "200",
            "--batch-size",
            "64",
            "--step",
            "0.02",
            "--out",
            str(ref),
        ],
        "upload without token": [*CLI, "upload", str(ref), "--repo-id", "someone/x"],
        "hub source offline": [
            *CLI,
            "generate",
            "--source-model",
            str(model),
            "--cifar10",
            "hub:uoft-cs/cifar10",
            "--out",
            str(work / "o9"),
        ],
    }
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_TOKEN": ""}
    ok = {}
    for name, cmd in cases.items():
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        err = p.stderr.strip().splitlines()
        ok[name] = p.returncode == 2 and len(err) == 1 and "Traceback" not in p.stderr
    untouched = folder_state(ref) == before
    return {"tried": len(cases), "one_line_exit_2": sum(ok.values()), "cases": ok, "reference_untouched": untouched}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--images", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(HERE / "soak.json"))
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        src, model = make_inputs(work, args.images, args.seed)
        res = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "images": args.images}
        res["kills"] = kills(src, model, work, args.kills, rng)
        res["corruptions"] = corruptions(work / "ref", model, work)
        res["bad_inputs"] = bad_inputs(src, model, work / "ref", work)
    from cifar10_fgs.provenance import write_json

    write_json(args.out, res)
    k, c, b = res["kills"], res["corruptions"], res["bad_inputs"]
    print(
        f"kills survived      {k['kills']} (partial shards seen {k['partial_shards_seen']}, final identical {k['identical']})"
    )
    print(f"bytes lost          {k['bytes_lost']}")
    print(f"corruptions         {c['detected']}/{c['tried']} detected")
    print(
        f"bad inputs          {b['one_line_exit_2']}/{b['tried']} one-line exit 2 "
        f"(reference untouched {b['reference_untouched']})"
    )
    for name, good in {**c["cases"], **b["cases"]}.items():
        if not good:
            print(f"  FAILED: {name}")
    print(f"wrote {args.out}")
    ok = (
        k["identical"]
        and not k["partial_shards_seen"]
        and c["detected"] == c["tried"]
        and b["one_line_exit_2"] == b["tried"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
