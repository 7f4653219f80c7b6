"""A run's name, notes and colour: kept apart from its config, fixed at creation, never essential."""
import json

from msr.store.annotations import (PALETTE, distinct_colors, fallback_color, least_used_color, read_annotations, write_annotations)
from msr.store.folders import create_run_folder
from msr.store.layout import run_files
from msr.store.reader import list_runs, load_run


def make(root, n=1):
    return [create_run_folder(root, "mnist", {"arch": "shared", "name": "given"}, "t", 10) for _ in range(n)]


def test_runs_made_side_by_side_get_different_colours(tmp_path):
    paths = make(tmp_path, len(PALETTE) + 1)
    colors = [load_run(p).color for p in paths]
    assert colors[:len(PALETTE)] == list(PALETTE)  # each palette colour once, in order
    assert colors[-1] == PALETTE[0]  # then the least used again


def test_the_colour_survives_a_rename_and_the_config_is_untouched(tmp_path):
    (path,) = make(tmp_path)
    config = run_files(path).config.read_text()
    color = load_run(path).color
    write_annotations(path, name="  my   best\trun ", notes="lr 0.4 was too high\nnext: 0.2")
    rec = load_run(path)
    assert rec.name == "my best run" and rec.color == color
    assert rec.annotations.notes == "lr 0.4 was too high\nnext: 0.2"
    assert run_files(path).config.read_text() == config  # what was trained is never rewritten
    write_annotations(path, notes="")
    assert load_run(path).name == "my best run"  # what is not given is kept


def test_without_a_rename_the_config_name_shows(tmp_path):
    (path,) = make(tmp_path)
    assert load_run(path).name == "given"


def test_a_damaged_or_missing_annotations_file_means_none(tmp_path):
    a, b = make(tmp_path, 2)
    run_files(a).annotations.write_text("{ torn")
    run_files(b).annotations.unlink()
    for path in (a, b):
        rec = load_run(path)
        assert not rec.damaged and rec.name == "given" and rec.color == fallback_color(rec.run_id)
    run_files(a).annotations.write_text(json.dumps({"name": 3, "notes": ["x"], "color": "red"}))
    assert read_annotations(a).name == "" and read_annotations(a).color is None
    assert len(list_runs(tmp_path)) == 2


def test_least_used_colour_of_an_empty_or_missing_folder(tmp_path):
    assert least_used_color(tmp_path / "nowhere") == PALETTE[0]


def test_overlaid_runs_never_share_a_colour():
    same = [PALETTE[0], PALETTE[1], PALETTE[0]]  # an eleventh run came back to the first colour
    assert distinct_colors(same) == [PALETTE[0], PALETTE[1], PALETTE[2]]
    assert distinct_colors(list(PALETTE)) == list(PALETTE)
