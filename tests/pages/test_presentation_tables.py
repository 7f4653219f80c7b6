"""Tables in presentation mode: the same columns, names and formats as the normal page, drawn as HTML
(st.table) whose text the presentation style enlarges, since st.dataframe's canvas ignores page styles."""
import math
from pathlib import Path

import pandas as pd
import streamlit as st
from streamlit.testing.v1 import AppTest

from test_runs_page import finished

from ui.present import cell_text, text_table

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def test_the_text_table_keeps_what_the_dataframe_shows():
    frame = pd.DataFrame({"acc": [0.84123, None], "loss": [0.123456, math.nan], "name": ["a", "b"],
                          "hidden": [1, 2], "steps": [10, 20]})
    config = {"acc": st.column_config.ProgressColumn("Test accuracy", format="percent", min_value=0.0, max_value=1.0),
              "loss": st.column_config.NumberColumn(format="%.3f"), "hidden": None, "name": "Run"}
    out = text_table(frame, config, column_order=["name", "acc", "loss", "hidden"], placeholder="—")
    assert list(out.columns) == ["Run", "Test accuracy", "loss"], "order kept, hidden and unlisted columns left out"
    assert out.to_dict("list") == {"Run": ["a", "b"], "Test accuracy": ["84.1%", "—"], "loss": ["0.123", "—"]}
    assert list(text_table(frame).columns) == list(frame.columns), "no config: every column, as named"


def test_cells_read_as_numbers_do():
    assert cell_text(0.5, "%g") == "0.5" and cell_text(3, "%d") == "3" and cell_text(0.25, "percent") == "25.0%"
    assert cell_text(1.5) == "1.5" and cell_text(2.0) == "2" and cell_text(1e-6) == "1e-06"
    assert cell_text(None) == "" and cell_text(None, placeholder="–") == "–" and cell_text(True) == "True"
    assert cell_text("n/a", "%.3f") == "n/a", "text in a number column stays text"


def _runs_page(root: Path, presenting: bool) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["runs_dir"] = str(root)
    if presenting:
        at.query_params["present"] = "1"
    at.run()
    at.switch_page("views/runs.py").run()
    assert not at.exception, at.exception
    return at


def test_presenting_the_runs_table_is_html_with_the_same_rows(tmp_path):
    finished(tmp_path, seed=1)
    finished(tmp_path, seed=2)
    plain, shown = _runs_page(tmp_path, False), _runs_page(tmp_path, True)
    assert len(plain.dataframe) >= 1 and len(plain.table) == 0
    assert len(shown.dataframe) == 0 and len(shown.table) >= 1, "presenting: no canvas tables"
    canvas, html = plain.dataframe[0].value, shown.table[0].value
    assert len(html) == len(canvas) == 2
    assert "Status" in html.columns and set(html["Status"]) == {"completed"}
