"""Test data shared by several test modules: random weight dicts and tiny training datasets.

Fixtures (photos, the bundled checkpoint tensors, the release `Cartoonizer`) are in ``conftest.py``;
this module holds the plain functions behind them and the ones tests call with their own arguments.
"""

import os
import struct
import zlib

import cv2
import numpy as np

from tests import reference


# --- random weights ----------------------------------------------------------------------------------

def random_tf1_weights(shapes, rng, kernel_gain=1.0, bias_std=0.05):
    """``{tf1_name: float32 array}`` for ``{tf1_name: shape}``, drawn in the table's order.

    Kernels/weights ~ N(0, kernel_gain² / fan_in) (gain √2: He), biases ~ N(0, bias_std²),
    SN ``u`` ~ N(0, 1) like the original's initialiser.
    """
    out = {}
    for name, shape in shapes.items():
        if name.endswith("/u"):
            value = rng.normal(0.0, 1.0, shape)
        elif len(shape) == 4:
            value = rng.normal(0.0, kernel_gain / np.sqrt(np.prod(shape[:3])), shape)
        else:
            value = rng.normal(0.0, bias_std, shape)
        out[name] = value.astype(np.float32)
    return out


def random_gan_weights(rng, channels=32, num_blocks=4, disc_channels=32, **kwargs):
    """Random TF1-named tensors of G, ``disc_blur`` and ``disc_gray`` (the tables of tests/reference.py)."""
    shapes = {**reference.generator_shapes(channels, num_blocks),
              **reference.discriminator_shapes("disc_blur", 3, disc_channels),
              **reference.discriminator_shapes("disc_gray", 1, disc_channels)}
    return random_tf1_weights(shapes, rng, **kwargs)


def random_vgg_weights(rng, with_conv5=True, bias_std=0.5):
    """A ``vgg19_no_fc.npy``-style dict ``{conv{b}_{i}: [kernel, bias]}``, He-scaled so activations stay
    O(input) through the 16 layers."""
    out = {}
    for name, (kernel, bias) in reference.vgg_shapes(with_conv5).items():
        out[name] = [rng.normal(0.0, np.sqrt(2.0 / np.prod(kernel[:3])), kernel).astype(np.float32),
                     rng.normal(0.0, bias_std, bias).astype(np.float32)]
    return out


# --- memory in child processes ----------------------------------------------------------------------

# Source for a child script: its own peak RSS in bytes. Not ``ru_maxrss``: Python starts children with
# vfork, and Linux carries the parent's (here: pytest's, often > 2 GB) high-water mark over the exec.
# VmHWM belongs to the child's own address space.
HIGH_WATER = """
def high_water():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
"""


# --- tiny training datasets --------------------------------------------------------------------------

# Every dataset image is one flat colour that encodes where it came from: blue = folder code,
# green = 20 + 10 · file index, red = 200. So a batch tells which folder and files it was drawn from.
FOLDER_BLUE = {"photo_face": 10, "photo_scenery": 50, "cartoon_face": 90, "cartoon_scenery": 130,
               "photo": 170, "cartoon": 210}


def write_flat_image(path, folder, index, size=(40, 48)):
    image = np.empty(tuple(size) + (3,), np.uint8)
    image[:] = (FOLDER_BLUE[folder], 20 + 10 * index, 200)   # B, G, R as cv2 writes them
    cv2.imwrite(str(path), image)


def write_dataset(root, files_per_folder=4, size=(40, 48), layout="two"):
    """Write flat-colour PNGs into the original layout ('two') or photo/cartoon ('one'); returns root."""
    names = (["photo_face", "photo_scenery", "cartoon_face", "cartoon_scenery"] if layout == "two"
             else ["photo", "cartoon"])
    for name in names:
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for i in range(files_per_folder):
            write_flat_image(os.path.join(root, name, f"{i:03d}.png"), name, i, size)
    return str(root)


# --- decompression bombs -----------------------------------------------------------------------------

def _png_chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def zero_png(path, width, height, rows_per_block=100):
    """Write a valid all-black RGB PNG of ``width`` x ``height`` without ever holding its pixels.

    30000x30000 gives a 2.6 MB file that decodes to 2.7 GB. The zlib stream is one deflate block of
    ``rows_per_block`` zero rows, repeated (a full flush resets the compressor, so the block's bytes
    are the same every time), then the end block and the Adler-32 of n zero bytes: A = 1, B = n mod 65521.
    """
    row = 1 + 3 * width                                  # filter byte + RGB
    blocks, rest = divmod(height, rows_per_block)
    deflate = zlib.compressobj(6, zlib.DEFLATED, -15)    # raw deflate: the zlib header is written here
    block = deflate.compress(b"\0" * (row * rows_per_block)) + deflate.flush(zlib.Z_FULL_FLUSH)
    tail = deflate.compress(b"\0" * (row * rest)) + deflate.flush(zlib.Z_FINISH)
    n = row * height
    idat = b"\x78\x9c" + block * blocks + tail + struct.pack(">I", ((n % 65521) << 16) | 1)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)   # 8-bit RGB, no interlace
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
                + _png_chunk(b"IEND", b""))
    return str(path)
