"""Makes the side-by-side benchmark's inputs: calibration and test samples as .npy
files (one sample per file, float32, the model's input shape), from data that ships in
packages. Driven by `cargo xtask bench`; deterministic for a given seed.

usage: inputs.py KIND SHAPE CACHE OUT [--calib N] [--test N] [--seed S]

KIND   fashion-mnist  Fashion-MNIST images (Debian dataset-fashion-mnist), x/255
       photo:SCALE    crops of the cached photos, resized, NCHW RGB
       text-photo:SCALE  the same with lines of text drawn on them
       speech-mel     espeak-ng speech at 16 kHz through the cached mel front end,
                      spec/10 + 2, windows of the input's frame count (N, T, 32, 1)
       SCALE: unit (x/255), paddle ((x/255 - 0.5) / 0.5), imagenet ((x/255 - mean) / std)
SHAPE  d0,d1,... the concrete input shape
CACHE  the model cache of `cargo xtask models` (photos, front-end model)
OUT    folder that receives calib/NNNN.npy and test/NNNN.npy
"""

import argparse
import gzip
import os
import subprocess
import tempfile
import wave

import numpy as np

FASHION = "/usr/share/datasets/fashion-mnist"
PHOTOS = ("china.jpg", "flower.jpg")
SENTENCES = (
    "turn on the kitchen lights",
    "what is the weather like tomorrow morning",
    "set a timer for ten minutes",
    "play some quiet music in the living room",
    "how far is it to the nearest station",
    "remind me to call my sister at six",
    "open the garage door please",
    "the quick brown fox jumps over the lazy dog",
)
VOICES = ("en", "en-us", "en-gb-x-rp", "en+f3", "en+m3")


def fashion_mnist(shape, count, split, rng):
    name = "train-images-idx3-ubyte.gz" if split == "calib" else "t10k-images-idx3-ubyte.gz"
    with gzip.open(os.path.join(FASHION, name)) as f:
        images = np.frombuffer(f.read(), dtype=np.uint8, offset=16).reshape(-1, 28, 28)
    picks = rng.choice(len(images), size=count, replace=False)
    return [(images[i].astype(np.float32) / 255.0).reshape(shape) for i in picks]


WORDS = (
    "invoice total amount date station exit open closed market street north south "
    "price 12.50 2026 express tea rice fresh daily menu parking entrance floor 3 "
    "warning keep door clear delivery order number 0417 hotel river garden"
).split()


IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1)


def scale(x, how):
    """`x`: CHW floats in [0, 1]."""
    if how == "unit":
        return x
    if how == "paddle":
        return (x - 0.5) / 0.5
    if how == "imagenet":
        return (x - IMAGENET_MEAN) / IMAGENET_STD
    raise SystemExit(f"unknown image scaling {how} (unit, paddle, imagenet)")


def photo(shape, count, split, rng, cache, how, text):
    """Photo crops, with lines of rendered text on them when `text` (what OCR models see)."""
    from PIL import Image, ImageDraw, ImageFont

    _, channels, height, width = shape
    assert channels == 3, f"photos need 3 channels, got shape {shape}"
    # Calibration crops come from one photo, test crops from the other.
    photo = Image.open(os.path.join(cache, PHOTOS[0 if split == "calib" else 1])).convert("RGB")
    samples = []
    for _ in range(count):
        # A crop with the input's aspect ratio, 40-100% of the photo's largest such crop.
        full_w = min(photo.width, int(photo.height * width / height))
        crop_w = int(full_w * rng.uniform(0.4, 1.0))
        crop_h = max(1, int(crop_w * height / width))
        left = int(rng.integers(0, photo.width - crop_w + 1))
        top = int(rng.integers(0, photo.height - crop_h + 1))
        image = photo.crop((left, top, left + crop_w, top + crop_h)).resize((width, height), Image.BILINEAR)
        if not text:
            x = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0
            samples.append(scale(x, how).reshape(shape).astype(np.float32))
            continue
        draw = ImageDraw.Draw(image)
        # One line filling most of a short input (a text-line crop); a few lines on a tall one.
        lines = 1 if height <= 64 else int(rng.integers(2, 6))
        for _ in range(lines):
            size = int(height * rng.uniform(0.55, 0.8)) if lines == 1 else int(rng.integers(14, 36))
            font = ImageFont.load_default(size=size)
            text = " ".join(rng.choice(WORDS, size=int(rng.integers(2, 6))))
            x = int(rng.integers(0, max(1, width // 4)))
            y = int(rng.integers(0, max(1, height - size)))
            shade = int(rng.choice([15, 240]))
            draw.text((x, y), text, fill=(shade, shade, shade), font=font)
        if lines == 1 and rng.random() < 0.5:
            image = image.rotate(180)  # text-direction classifiers see both ways up
        x = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0
        samples.append(scale(x, how).reshape(shape).astype(np.float32))
    return samples


def speech(sentence, voice):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "speech.wav")
        subprocess.run(["espeak-ng", "-v", voice, "-w", path, sentence], check=True)
        with wave.open(path) as w:
            rate, audio = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    # espeak-ng speaks at 22,050 Hz: resample linearly to 16 kHz.
    times = np.arange(0, len(audio) / rate, 1 / 16000)
    return np.interp(times, np.arange(len(audio)) / rate, audio.astype(np.float32))


def speech_mel(shape, count, split, rng, cache):
    import onnxruntime as ort

    frames = shape[1]
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    front = ort.InferenceSession(os.path.join(cache, "oww-melspectrogram.onnx"), options)
    name = front.get_inputs()[0].name
    half = len(SENTENCES) // 2
    sentences = SENTENCES[:half] if split == "calib" else SENTENCES[half:]
    mels = []
    for i, sentence in enumerate(sentences):
        audio = speech(sentence, VOICES[i % len(VOICES)])
        # A quarter second of quiet on each side, so windows also see onsets, and a
        # little noise throughout (a microphone is never digitally silent).
        quiet = np.zeros(4000, np.float32)
        audio = np.concatenate([quiet, audio, quiet])
        audio = audio + rng.normal(0.0, 30.0, len(audio)).astype(np.float32)
        mel = front.run(None, {name: audio[None, :].astype(np.float32)})[0]
        mels.append(np.squeeze(mel) / 10.0 + 2.0)
    samples = []
    for _ in range(count):
        mel = mels[int(rng.integers(0, len(mels)))]
        start = int(rng.integers(0, max(1, len(mel) - frames + 1)))
        window = mel[start : start + frames]
        window = np.pad(window, ((0, frames - len(window)), (0, 0)))
        samples.append(window.reshape(shape).astype(np.float32))
    return samples


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kind")
    parser.add_argument("shape")
    parser.add_argument("cache")
    parser.add_argument("out")
    parser.add_argument("--calib", type=int, default=32)
    parser.add_argument("--test", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    shape = [int(d) for d in args.shape.split(",")]
    rng = np.random.default_rng(args.seed)
    for split, count in (("calib", args.calib), ("test", args.test)):
        if args.kind == "fashion-mnist":
            samples = fashion_mnist(shape, count, split, rng)
        elif args.kind.split(":")[0] in ("photo", "text-photo"):
            source, _, how = args.kind.partition(":")
            samples = photo(shape, count, split, rng, args.cache, how or "unit", source == "text-photo")
        elif args.kind == "speech-mel":
            samples = speech_mel(shape, count, split, rng, args.cache)
        else:
            raise SystemExit(f"unknown input kind {args.kind}")
        folder = os.path.join(args.out, split)
        os.makedirs(folder, exist_ok=True)
        for old in os.listdir(folder):
            os.remove(os.path.join(folder, old))
        for i, sample in enumerate(samples):
            np.save(os.path.join(folder, f"{i:04}.npy"), sample)


if __name__ == "__main__":
    main()
