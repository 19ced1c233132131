"""Decoding to RGB (modes, 16-bit, alpha, EXIF) and the content-keyed decode cache."""

from __future__ import annotations

import io
import os
import shutil

import numpy as np
import pytest
from _imagegen import image_array, make_image_folder, png_bomb_header, truncated_jpeg, write_image
from PIL import Image

from ptdiag.data import decode_cache
from ptdiag.data.decode_cache import DecodeCache, decode_file, default_cache_dir, scan_files, to_rgb
from ptdiag.errors import DataError


def _roundtrip(image: Image.Image, fmt: str = "PNG", **kwargs) -> io.BytesIO:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    buffer.seek(0)
    return buffer


def _decode(image: Image.Image, size: int = 4, fmt: str = "PNG", **kwargs) -> np.ndarray:
    array, _ = decode_file(_roundtrip(image, fmt, **kwargs), size)
    return array


# ------------------------------------------------------------------------------------------------ conversions


def test_grayscale_becomes_equal_rgb_channels():
    out = _decode(Image.fromarray(np.full((8, 8), 77, np.uint8), "L"))
    assert out.shape == (4, 4, 3) and out.dtype == np.uint8
    assert (out == 77).all()


def test_palette_maps_to_its_colours():
    image = Image.new("P", (8, 8))
    image.putpalette([10, 20, 30] + [0, 0, 0] * 255)
    assert (_decode(image) == [10, 20, 30]).all()


def test_rgba_is_composited_on_white():
    pixel = np.array([[[200, 0, 0, 128]]], np.uint8).repeat(8, 0).repeat(8, 1)
    out = _decode(Image.fromarray(pixel, "RGBA"))
    # 0.5 * colour + 0.5 * white, to within rounding.
    np.testing.assert_allclose(out[0, 0], [228, 127, 127], atol=1)
    transparent = np.zeros((8, 8, 4), np.uint8)  # hidden colour black, fully transparent -> white
    assert (_decode(Image.fromarray(transparent, "RGBA")) == 255).all()


def test_palette_transparency_is_composited_on_white():
    image = Image.new("P", (8, 8), 1)
    image.putpalette([0, 0, 0, 0, 255, 0] + [0, 0, 0] * 254)
    image.info["transparency"] = 1
    assert (_decode(image) == 255).all()


def test_cmyk_jpeg_converts_to_rgb_colours():
    cyan = Image.new("CMYK", (16, 16), (255, 0, 0, 0))
    out = _decode(cyan, fmt="JPEG", quality=100)
    np.testing.assert_allclose(out[2, 2], [0, 255, 255], atol=3)
    white = _decode(Image.new("CMYK", (16, 16), (0, 0, 0, 0)), fmt="JPEG", quality=100)
    np.testing.assert_allclose(white[2, 2], [255, 255, 255], atol=3)


def test_sixteen_bit_png_is_scaled_not_clipped():
    values = np.array([[0, 257, 32896, 65535]], np.uint16).repeat(4, 0)
    image = Image.fromarray(values)
    assert image.mode.startswith("I;16")
    buffer = _roundtrip(image)
    with Image.open(buffer) as reopened:
        rgb = np.asarray(to_rgb(reopened))
    assert rgb[0, :, 0].tolist() == [0, 1, 128, 255]  # PIL's own convert("L") would give 0, 255, 255, 255
    assert (rgb[..., 0] == rgb[..., 2]).all()


def test_one_bit_image():
    image = Image.fromarray(np.array([[0, 255]] * 2, np.uint8)).convert("1")
    assert np.asarray(to_rgb(image))[:, :, 0].tolist() == [[0, 255], [0, 255]]


def test_resize_is_shorter_side_then_center_crop():
    # Wide 40x20: left half black, right half white. The centre 20x20 crop shows both halves side by side.
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, 20:] = 255
    out = _decode(Image.fromarray(wide), size=10)
    assert out.shape == (10, 10, 3)
    assert out[:, :4].max() < 30 and out[:, 6:].min() > 225


def test_exif_orientation_is_applied():
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, 20:] = 255  # stored: black left, white right
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise: black on top, white below
    image = Image.fromarray(wide)
    array, meta = decode_file(_roundtrip(image, "JPEG", quality=95, exif=exif.tobytes()), 10)
    assert meta.exif_rotated and (meta.width, meta.height) == (40, 20)
    assert array[:4].max() < 40 and array[6:].min() > 215  # rows, not columns, now split black/white


def test_truncated_and_bomb_files_are_reported_not_raised(tmp_path):
    bad = truncated_jpeg(tmp_path / "cut.jpg")
    bomb = png_bomb_header(tmp_path / "bomb.png")
    garbage = tmp_path / "text.png"
    garbage.write_text("not an image")
    results = scan_files([bad, bomb, garbage, tmp_path / "gone.png"], size=8, workers=1)
    assert [r.error_code for r in results] == ["corrupt-image", "decompression-bomb", "corrupt-image", "missing-file"]
    assert "truncated" in results[0].error and str(bad) in results[0].error
    assert str(bomb) in results[1].error


def test_pil_pixel_limit_is_respected(tmp_path, monkeypatch):
    path = write_image(tmp_path / "big.png", image_array(0, (64, 64)))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64*64 > 2 * 1000: PIL raises, we report
    (result,) = scan_files([path], workers=1)
    assert result.error_code == "decompression-bomb"


# ------------------------------------------------------------------------------------------------------ cache


def test_default_cache_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("PTDIAG_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    assert DecodeCache().root == tmp_path / "c"
    monkeypatch.delenv("PTDIAG_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "ptdiag"


def _scan(paths):
    results = scan_files(paths, workers=1)
    return [r.hash for r in results]


def test_load_decodes_once_then_reads(tmp_path, monkeypatch):
    paths = make_image_folder(tmp_path / "data", {"a": 3, "b": 2}, size=(30, 20))
    hashes = _scan(paths)
    cache = DecodeCache(tmp_path / "cache", workers=1)
    assert cache.status(hashes, 16) == (0, 5)
    first = cache.load(paths, hashes, 16)
    assert first.shape == (5, 16, 16, 3) and first.dtype == np.uint8
    assert cache.status(hashes, 16) == (5, 5) and cache.sizes() == [16]

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again")

    monkeypatch.setattr(decode_cache, "decode_file", no_decoding)
    again = DecodeCache(tmp_path / "cache", workers=1).load(paths[::-1], hashes[::-1], 16)
    np.testing.assert_array_equal(again, first[::-1])
    expected = np.asarray(Image.open(paths[0]).convert("RGB").resize((24, 16), Image.Resampling.BILINEAR))[:, 4:20]
    np.testing.assert_allclose(first[0].astype(int), expected.astype(int), atol=2)


def test_cache_is_keyed_by_content_and_size(tmp_path):
    (path,) = make_image_folder(tmp_path / "data", {"a": 1})
    copy = tmp_path / "elsewhere" / "renamed.png"
    copy.parent.mkdir()
    shutil.copy(path, copy)
    cache = DecodeCache(tmp_path / "cache", workers=1)
    (digest,) = _scan([path])
    cache.load([path], [digest], 8)
    assert cache.status(_scan([copy]), 8) == (1, 1)  # same bytes, other path: a hit
    assert cache.status([digest], 12) == (0, 1)  # other resolution: a miss
    assert cache.load([copy], [digest], 12).shape == (1, 12, 12, 3)
    assert cache.sizes() == [8, 12]


def test_load_rejects_a_changed_or_vanished_file(tmp_path):
    a, b = make_image_folder(tmp_path / "data", {"a": 2})
    hashes = _scan([a, b])
    cache = DecodeCache(tmp_path / "cache", workers=1)
    write_image(a, image_array(99))
    with pytest.raises(DataError, match="changed since it was scanned"):
        cache.load([a], hashes[:1], 8)
    b.unlink()
    with pytest.raises(DataError, match="missing"):
        cache.load([b], hashes[1:], 8)


def test_damaged_index_file_means_decode_again(tmp_path):
    paths = make_image_folder(tmp_path / "data", {"a": 2})
    hashes = _scan(paths)
    cache = DecodeCache(tmp_path / "cache", workers=1)
    cache.load(paths, hashes, 8)
    (index_file,) = (tmp_path / "cache").rglob("*.json")
    index_file.write_text("{truncated")
    assert cache.status(hashes, 8) == (0, 2)
    assert cache.load(paths, hashes, 8).shape == (2, 8, 8, 3)


def test_parallel_scan_matches_serial(tmp_path):
    n = decode_cache.PARALLEL_MIN_FILES + 6
    paths = make_image_folder(tmp_path / "data", {"a": n // 2, "b": n - n // 2}, ext=".jpg")
    paths.insert(5, truncated_jpeg(tmp_path / "data" / "a" / "zz_cut.jpg"))
    serial = scan_files(paths, size=8, workers=1)
    cache = DecodeCache(tmp_path / "cache", workers=2)
    parallel = scan_files(paths, size=8, cache_root=cache.root, fill=True, workers=2)
    assert [r.hash for r in parallel] == [r.hash for r in serial]
    assert [r.error_code for r in parallel] == [r.error_code for r in serial]
    assert parallel[5].error_code == "corrupt-image"
    good = [i for i, r in enumerate(serial) if r.ok]
    assert cache.status([serial[i].hash for i in good], 8) == (len(good), len(good))
    assert len(list((tmp_path / "cache").rglob("*.npy"))) >= 2  # several workers wrote chunks
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.name.endswith(".tmp")]
    assert os.listdir(tmp_path / "data" / "a")  # inputs untouched


@pytest.mark.parametrize("damage", ["truncate", "garbage-header", "empty"])
def test_a_damaged_array_is_dropped_and_decoded_again(tmp_path, damage):
    """A chunk array cut short (a full disk, a killed copy) must not brick later runs: verified, dropped, redone."""
    paths = make_image_folder(tmp_path / "data", {"a": 3})
    hashes = _scan(paths)
    cache = DecodeCache(tmp_path / "cache", workers=1)
    first = cache.load(paths, hashes, 8)
    (array_file,) = (tmp_path / "cache").rglob("*.npy")
    data = array_file.read_bytes()
    array_file.write_bytes({"truncate": data[: len(data) - 50], "garbage-header": b"not an npy" + data[10:],
                            "empty": b""}[damage])
    assert cache.status(hashes, 8) == (0, 3)  # inspect no longer reports it as cached
    dropped = decode_cache.drop_damaged_chunks(cache.root)
    assert [p for p, _ in dropped] == [array_file] and not array_file.exists()
    np.testing.assert_array_equal(cache.load(paths, hashes, 8), first)
    assert cache.status(hashes, 8) == (3, 3)


def test_scan_reports_a_damaged_cache_file_as_a_finding(tmp_path):
    from ptdiag.data.ingest import scan_pair

    make_image_folder(tmp_path / "ref", {"a": 12, "b": 12}, seed=1)
    make_image_folder(tmp_path / "shift", {"a": 4, "b": 4}, seed=2)
    cache = DecodeCache(tmp_path / "cache", workers=1)
    scan_pair(tmp_path / "ref", tmp_path / "shift", image_size=8, cache=cache)
    array_file = next((tmp_path / "cache").rglob("*.npy"))
    array_file.write_bytes(array_file.read_bytes()[:-100])
    pair = scan_pair(tmp_path / "ref", tmp_path / "shift", image_size=8, cache=cache)
    codes = [f.code for f in pair.findings]
    assert "decode-cache-damaged" in codes
    assert cache.status(pair.reference.hashes + pair.shift.hashes, 8) == (32, 32)
