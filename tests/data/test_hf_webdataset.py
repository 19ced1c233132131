"""Hugging Face datasets and WebDataset shards as image sets: same counts as ImageFolder, findings naming rows/keys."""

from __future__ import annotations

import json

import pytest
from _imagegen import make_image_folder
from _tables import make_parquet_dataset, make_saved_dataset, make_shards
from typer.testing import CliRunner

from ptdiag.cli import app
from ptdiag.data.decode_cache import DecodeCache
from ptdiag.data.discovery import detect_format, discover
from ptdiag.data.ingest import scan_pair
from ptdiag.data.sources import TableRow, TarMember
from ptdiag.errors import EXIT_DATA, EXIT_OK, DataError

pytest.importorskip("datasets")

COUNTS = {"cat": 12, "dog": 11}
SHIFT = {"cat": 10, "dog": 10}


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    """The same reference images as an ImageFolder, a save_to_disk folder, a Parquet file and shards."""
    root = tmp_path_factory.mktemp("sources")
    return {
        "folder": make_image_folder(root / "folder", COUNTS, seed=1)[0].parents[1],
        "disk": make_saved_dataset(root / "disk", COUNTS, seed=1),
        "parquet": make_parquet_dataset(root / "pq" / "train.parquet", COUNTS, seed=1),
        "shards": make_shards(root / "shards", COUNTS, seed=1)[0].parent,
        "pattern": str(root / "shards" / "shard-{000000..000001}.tar"),
        "shift": make_image_folder(root / "shift", SHIFT, seed=2)[0].parents[1],
    }


def _report(tmp_path, train, shift, *args):
    out = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["inspect", "--train", str(train), "--shift", str(shift), "--json", str(out),
                                      *args])
    assert result.exit_code == EXIT_OK, result.output
    return json.loads(out.read_text())


def test_formats_are_detected(sources):
    assert detect_format(sources["disk"]) == "hf"
    assert detect_format(sources["parquet"]) == "hf"
    assert detect_format(sources["shards"]) == "webdataset"
    assert detect_format(sources["shards"] / "shard-000000.tar") == "webdataset"
    assert detect_format(sources["folder"]) == "imagefolder"


@pytest.mark.parametrize("kind", ["disk", "parquet", "shards", "pattern"])
def test_inspect_counts_equal_the_image_folder(tmp_path, sources, kind):
    expected = _report(tmp_path, sources["folder"], sources["shift"])
    report = _report(tmp_path, sources[kind], sources["shift"])
    assert report["sets"]["train"]["format"] == ("hf" if kind in ("disk", "parquet") else "webdataset")
    assert report["classes"] == expected["classes"]
    assert report["sets"]["train"]["n_usable"] == sum(COUNTS.values())
    # Same bytes decode to the same content hash: the fingerprint differs only through the locations.
    assert report["sets"]["train"]["modes"] == expected["sets"]["train"]["modes"]


def test_images_are_byte_identical_and_share_the_decode_cache(tmp_path, sources):
    cache = DecodeCache(tmp_path / "cache", workers=1)
    folder = scan_pair(sources["folder"], sources["shift"], cache=cache, image_size=16)
    for kind in ("disk", "parquet", "shards"):
        pair = scan_pair(sources[kind], sources["shift"], cache=cache, image_size=16)
        assert sorted(pair.reference.hashes) == sorted(folder.reference.hashes)
        assert pair.n_decoded == 0  # every image was already in the cache, keyed by content
        images = cache.load(pair.reference.paths, pair.reference.hashes, 16)
        assert images.shape == (sum(COUNTS.values()), 16, 16, 3)


def test_sources_are_references_not_bytes(sources):
    rows = discover(sources["disk"], role="train").paths
    members = discover(sources["pattern"], role="train").paths
    assert all(isinstance(r, TableRow) for r in rows) and all(isinstance(m, TarMember) for m in members)
    assert str(rows[3]) == f"hf:{sources['disk']}#row=3"
    assert str(members[0]).startswith("wds:") and str(members[0]).endswith("#key=cat_0000")


def test_corrupt_bytes_and_missing_labels_name_the_row(tmp_path, sources):
    bad = make_saved_dataset(tmp_path / "bad", COUNTS, seed=1, corrupt_rows=(3,), unlabelled_rows=(5,))
    pair = scan_pair(bad, sources["shift"])
    by_code = {f.code: f for f in pair.findings}
    assert by_code["corrupt-image"].path == f"hf:{bad}#row=3"
    assert f"hf:{bad}#row=3" in by_code["corrupt-image"].message
    assert by_code["missing-label"].path == f"hf:{bad}#row=5"
    assert len(pair.reference) == sum(COUNTS.values()) - 2


def test_shard_samples_without_image_or_label_and_corrupt_bytes_name_the_key(tmp_path, sources):
    shards = make_shards(tmp_path / "bad", COUNTS, seed=1, drop_label=("cat_0001",), drop_image=("dog_0002",),
                         corrupt=("dog_0003",))
    pair = scan_pair(shards[0].parent, sources["shift"])
    found = {(f.code, f.path.split("#")[-1]) for f in pair.findings if f.path and "#" in f.path}
    assert {("missing-label", "key=cat_0001"), ("missing-image", "key=dog_0002"),
            ("corrupt-image", "key=dog_0003")} <= found
    assert len(pair.reference) == sum(COUNTS.values()) - 3


def test_json_labels_and_integer_labels_matched_by_value(tmp_path):
    json_shards = make_shards(tmp_path / "json", COUNTS, label="json", n_shards=1)
    listing = discover(json_shards[0], role="train")
    assert listing.classes() == ["cat", "dog"]
    int_shards = make_shards(tmp_path / "int", COUNTS, label="cls-int", n_shards=1)
    ints = discover(int_shards[0], role="shift")
    assert ints.classes() == ["0", "1"]
    assert "labels-by-value" in {f.code for f in ints.findings}
    # A shifted set with integer labels matches a reference whose classes are named by value.
    named = make_shards(tmp_path / "named", {"0": 12, "1": 11}, seed=3, n_shards=1)
    pair = scan_pair(named[0], int_shards[0])
    assert pair.classes == ["0", "1"]


def test_label_column_override_reads_a_json_field(tmp_path):
    shards = make_shards(tmp_path / "s", COUNTS, label="json", n_shards=1)
    with pytest.raises(DataError, match="no images"):
        pair = scan_pair(shards[0], shards[0], label_column="species")
        pair.raise_for_errors()
    assert discover(shards[0], role="train").classes() == ["cat", "dog"]


def test_dataset_dict_split_and_column_overrides(tmp_path, sources):
    import datasets
    from _tables import hf_dataset

    datasets.DatasetDict(train=hf_dataset(COUNTS, seed=1), test=hf_dataset(SHIFT, seed=2)).save_to_disk(
        str(tmp_path / "dd")
    )
    assert len(discover(tmp_path / "dd", role="train").paths) == sum(COUNTS.values())
    with pytest.raises(DataError, match="which split"):
        discover(tmp_path / "dd", role="shift")
    pair = scan_pair(tmp_path / "dd", tmp_path / "dd", shift_split="test", drop_leaked=False)
    assert pair.shift.class_counts() == SHIFT
    assert len(discover(f"{tmp_path / 'dd'}:test", role="shift").paths) == sum(SHIFT.values())
    with pytest.raises(DataError, match="no column 'pixels'"):
        discover(tmp_path / "dd", role="train", options=_options(image_column="pixels"))


def _options(**kwargs):
    from ptdiag.data.types import SourceOptions

    return SourceOptions(**kwargs)


def test_hub_id_offline_fails_fast_with_exit_3(tmp_path, sources, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = CliRunner().invoke(app, ["inspect", "--train", "hf://datasets/acme/pets:train", "--shift",
                                      str(sources["shift"])])
    assert result.exit_code == EXIT_DATA
    assert "acme/pets" in result.output and "HF_HUB_OFFLINE" in result.output
    assert "Traceback" not in result.output


def test_bad_sources_are_data_errors(tmp_path, sources):
    broken = tmp_path / "broken.tar"
    broken.write_bytes(b"\x1f\x8b gzip, not a tar")
    with pytest.raises(DataError, match="broken.tar"):
        discover(broken, role="train", fmt="webdataset")
    with pytest.raises(DataError, match="do not exist"):
        discover(str(tmp_path / "s-{0..3}.tar"), role="train")


def test_webdataset_library_groups_samples_the_same_way(sources):
    wds = pytest.importorskip("webdataset")
    urls = [str(p) for p in sorted(sources["shards"].glob("*.tar"))]
    keys = [s["__key__"] for url in urls for s in wds.WebDataset(url, shardshuffle=False)]
    ours = [str(p).split("#key=")[1] for p in discover(sources["shards"], role="train").paths]
    assert ours == keys


@pytest.mark.slow  # a few minutes on 2 cores: a whole (tiny) analysis
def test_analyze_on_a_hf_dataset_and_shards_counts_like_the_image_folder(tmp_path):
    from _imagegen import TINY
    from _tables import folder_to_saved_dataset, folder_to_shards

    from ptdiag.scenarios import get_scenario

    data = get_scenario("toy").generate(tmp_path / "toy", n_reference=160, n_shift=96, seed=0)
    train = folder_to_saved_dataset(data.reference_dir, tmp_path / "train-hf")
    shift = folder_to_shards(data.shift_dir, tmp_path / "shift-wds")
    expected = scan_pair(data.reference_dir, data.shift_dir)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["analyze", "--train", str(train), "--shift", str(shift), "--out", str(out),
                                      "--budget", "quick", "-q", *TINY, "--strategies", "lp"])
    assert result.exit_code == EXIT_OK, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["data"]["reference"]["class_counts"] == expected.reference.class_counts()
    assert results["data"]["shift"]["class_counts"] == expected.shift.class_counts()
    paths = __import__("pandas").read_parquet(out / "predictions.parquet")["path"]
    assert paths.str.startswith("hf:").any() and paths.str.startswith("wds:").any()
    # Images inside a dataset or shard carry their thumbnail (the report cannot open them as files).
    from ptdiag.report import render_html

    galleries = results["galleries"]
    items = [item for key in ("most_out_of_support", "most_shift_like_reference") for item in galleries[key]]
    assert items and all(item["thumbnail"].startswith("data:image/png;base64,") for item in items)
    html = render_html(results, image_root=out)
    assert "image not readable" not in html and html.count("data:image/png;base64,") >= len(items)


def test_missing_extras_give_a_clear_message(sources, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(DataError, match="needs the `datasets` library") as info:
        discover(sources["disk"], role="train")
    assert "ptdiag[hf]" in info.value.hint
    monkeypatch.setitem(__import__("sys").modules, "braceexpand", None)
    with pytest.raises(DataError, match="webdataset extra"):
        discover(sources["pattern"], role="train")
    assert len(discover(sources["shards"], role="train").paths) == sum(COUNTS.values())  # plain tar: stdlib only


def test_cli_works_without_the_extras(tmp_path, sources):
    """`import ptdiag` and `ptdiag inspect` on folders never import datasets, webdataset or braceexpand."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('datasets', 'webdataset', 'braceexpand'):\n"
        "            raise ImportError(f'blocked {name}')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from ptdiag.cli import main\n"
        f"sys.argv = ['ptdiag', 'inspect', '--train', {str(sources['folder'])!r},"
        f" '--shift', {str(sources['shift'])!r}]\n"
        "main()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "usable: yes" in proc.stdout


def test_hf_integer_labels_without_names_and_plain_columns(tmp_path):
    import datasets
    from _tables import encoded_images

    items = encoded_images({"a": 12, "b": 11})
    plain = datasets.Dataset.from_dict({"img": [data for _, _, data in items],  # raw bytes, no Image feature
                                        "target": [0 if c == "a" else 7 for c, _, _ in items]})
    plain.to_parquet(str(tmp_path / "plain.parquet"))
    listing = discover(tmp_path / "plain.parquet", role="train")
    assert listing.format == "hf" and listing.classes() == ["0", "7"]
    assert "labels-by-value" in {f.code for f in listing.findings}
    pair = scan_pair(tmp_path / "plain.parquet", tmp_path / "plain.parquet", drop_leaked=False)
    assert pair.reference.class_counts() == {"0": 12, "7": 11}


def test_unlabelled_shift_rows_and_samples_are_read_as_unlabelled(tmp_path, sources):
    """As the shifted set, a dataset without a label column and shard samples without a label are unlabelled
    (label -1, one info finding), not skipped; as the reference they are still errors / skipped."""
    import datasets
    from _tables import encoded_images

    items = encoded_images({"a": 6, "b": 5})
    datasets.Dataset.from_dict({"img": [data for _, _, data in items]}).to_parquet(str(tmp_path / "new.parquet"))
    pair = scan_pair(sources["folder"], tmp_path / "new.parquet")
    assert len(pair.shift) == 11 and (pair.shift.labels == -1).all()
    assert "shift-unlabelled" in {f.code for f in pair.findings}
    assert pair.classes == sorted(COUNTS)
    with pytest.raises(DataError, match="no label column"):
        discover(tmp_path / "new.parquet", role="train")
    keys = tuple(f"{c}_{i:04d}" for c, n in SHIFT.items() for i in range(n))[:7]
    shards = make_shards(tmp_path / "shards", SHIFT, seed=4, drop_label=keys)
    mixed = scan_pair(sources["folder"], shards[0].parent)
    assert (mixed.shift.labels == -1).sum() == 7 and len(mixed.shift) == sum(SHIFT.values())
