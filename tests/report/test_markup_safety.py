"""User strings that look like rich markup (`[/x]`, `[bold]`) print literally and never crash a command."""

from _imagegen import make_image_folder
from typer.testing import CliRunner

from ptdiag.cli import app

runner = CliRunner()


def test_inspect_prints_markup_like_class_names_literally(tmp_path):
    classes = {"[italic]a": 12, "[bold]b": 12}  # folder names cannot hold "/", so no closing tags here
    make_image_folder(tmp_path / "train", classes, seed=1)
    make_image_folder(tmp_path / "shift", classes, seed=2)
    result = runner.invoke(app, ["inspect", "--train", str(tmp_path / "train"), "--shift", str(tmp_path / "shift"),
                                 "--cache-dir", str(tmp_path / "cache")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "[italic]a" in result.output and "[bold]b" in result.output


def test_er_prints_markup_like_model_names_literally(tmp_path):
    rows = ["model,kind,ref_acc,shift_acc", "b[/1],baseline,0.62,0.41", "b2,baseline,0.68,0.46",
            "b3,baseline,0.76,0.55", "vit[/x],pretrained,0.86,0.78"]
    csv = tmp_path / "m.csv"
    csv.write_text("\n".join(rows) + "\n")
    result = runner.invoke(app, ["er", "--accuracies", str(csv)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "vit[/x]" in result.output and "b[/1]" in result.output


def test_error_messages_with_markup_like_paths_print_literally(tmp_path):
    missing = tmp_path / "cats[/old]"
    result = runner.invoke(app, ["inspect", "--train", str(missing), "--shift", str(tmp_path)])
    assert result.exit_code == 3
    assert "cats[/old]" in result.output and "Traceback" not in result.output
