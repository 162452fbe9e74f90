"""Folders and globs leave out artgan's own outputs, so running twice over a folder does not
process the first run's results; files named on the command line are always processed."""

from pathlib import Path

import pytest
from PIL import Image

from artgan import plugins
from artgan.batch import output_paths, output_suffixes
from artgan.errors import ArtganError


def _pictures(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 24), (180, 120, 60)).save(folder / name)


def test_every_task_names_its_outputs_as_they_are_written():
    suffixes = output_suffixes()
    assert {"style-transfer", "restored", "mask"} <= suffixes
    assert "restore" not in suffixes and "generate" not in suffixes


def test_folders_leave_out_outputs_of_any_task_with_a_note(tmp_path, capsys):
    _pictures(tmp_path / "in", "a.jpg", "a.style-transfer.jpg", "b.restored.png",
              "b.mask.png", "c.png", "sub/d.restored.jpg", "restored.jpg", "e.masks.png")
    pairs = output_paths([str(tmp_path / "in")], None, suffix="style-transfer")
    inputs = sorted(path.relative_to(tmp_path / "in").as_posix() for path, _ in pairs)
    assert inputs == ["a.jpg", "c.png", "e.masks.png", "restored.jpg"]
    note = capsys.readouterr().err
    assert note.startswith("note: skipped 4 files") and note.count("\n") == 1
    assert ".mask" in note and ".restored" in note and ".style-transfer" in note


def test_named_files_and_globs_that_spell_the_suffix_are_processed(tmp_path, capsys):
    _pictures(tmp_path, "a.jpg", "a.style-transfer.jpg", "b.restored.png")
    named = output_paths([str(tmp_path / "a.style-transfer.jpg")], None, "style-transfer")
    assert named == [(tmp_path / "a.style-transfer.jpg",
                      tmp_path / "a.style-transfer.style-transfer.jpg")]
    spelled = output_paths([str(tmp_path / "*.restored.png")], str(tmp_path / "out"), "restored")
    assert [path.name for path, _ in spelled] == ["b.restored.png"]
    assert capsys.readouterr().err == ""
    globbed = output_paths([str(tmp_path / "*.*")], str(tmp_path / "out"), "style-transfer")
    assert [path.name for path, _ in globbed] == ["a.jpg"]
    assert "skipped 2 files" in capsys.readouterr().err


def test_a_folder_of_only_outputs_is_one_clear_error(tmp_path):
    _pictures(tmp_path / "in", "a.style-transfer.jpg")
    with pytest.raises(ArtganError, match="only artgan's own outputs"):
        output_paths([str(tmp_path / "in")], None, "style-transfer")


def test_running_twice_over_a_folder_repaints_only_the_photos(tmp_path, capsys):
    photos = tmp_path / "photos"
    _pictures(photos, "a.jpg", "b.png", "nested/c.jpg")
    task = plugins.get_task("style-transfer")
    for _ in range(2):
        assert task.run([str(photos)], style="monet", device="cpu") == 0
    written = sorted(path.relative_to(photos).as_posix() for path in photos.rglob("*.*"))
    assert written == ["a.jpg", "a.style-transfer.jpg", "b.png", "b.style-transfer.png",
                       "nested/c.jpg", "nested/c.style-transfer.jpg"]
    second = capsys.readouterr().err.split("3 of 3 images written", 1)[1]
    assert "note: skipped 3 files" in second and "3 of 3 images written" in second


def test_one_loop_counts_outcomes_and_names_the_failed_file(tmp_path, capsys):
    """``process_files`` is the loop every task runs: outcomes are counted in one summary, a
    failing file costs a warning naming it, and a refusal or failure makes the exit code 1."""
    from artgan.batch import process_files
    from artgan.errors import ArtganError

    pairs = [(tmp_path / f"{name}.png", tmp_path / f"{name}.out.png")
             for name in ("good", "bad", "clean", "huge")]
    outcome = {"good": "written", "clean": "nothing", "huge": "refused"}

    def handle(source, target, protected):
        assert source in protected and target not in protected
        if source.stem == "bad":
            raise ArtganError("cannot read it")
        return outcome[source.stem]

    assert process_files(pairs, handle, progress=False) == 1
    err = capsys.readouterr().err
    assert f"warning: skipped: {tmp_path / 'bad.png'}: cannot read it" in err
    assert ("1 of 4 images written (beside the inputs), 1 with nothing to do, "
            "1 left alone (see above); 1 failed") in err
    assert process_files(pairs[2:3], handle, progress=False) == 0
    with pytest.raises(ArtganError, match="bad.png: cannot read it"):
        process_files(pairs[1:2], handle)
