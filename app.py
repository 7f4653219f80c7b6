"""MSR Explorer: Streamlit entry point (navigation and shared settings).

Run with ``streamlit run app.py``. Every page lives in views/ and only
composes functions of the msr package. The sidebar of every page lists the
runs training on this machine, each with a Stop button, and the switch for
presentation mode (ui.present).
"""
from pathlib import Path

from msr.core.runtime import share_cores

share_cores()  # before torch loads OpenMP: pages that compute share the cores with the runs

import streamlit as st  # noqa: E402

from ui import active_runs, present  # noqa: E402

# A local file: the tab icon must not depend on a font or emoji server (the app is shown offline).
ICON = str(Path(__file__).parent / "assets" / "icon.png")
st.set_page_config(page_title="MSR Explorer", page_icon=ICON, layout="wide",
                   initial_sidebar_state="collapsed" if present.presenting() else "auto")

PAGES = {
    "Explore": [
        st.Page("views/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("views/train.py", title="Train", icon=":material/rocket_launch:"),
        st.Page("views/runs.py", title="Runs", icon=":material/folder_open:"),
        st.Page("views/sweeps.py", title="Sweeps", icon=":material/grid_view:"),
    ],
    "Look inside": [
        st.Page("views/data.py", title="Data", icon=":material/image:"),
        st.Page("views/errors.py", title="Errors", icon=":material/error:"),
        st.Page("views/weights.py", title="Weights", icon=":material/grid_on:"),
        st.Page("views/symmetry.py", title="Symmetry", icon=":material/change_circle:"),
    ],
    "Paper": [
        st.Page("views/paper_check.py", title="Paper check", icon=":material/description:"),
    ],
}

page = st.navigation(PAGES)
present.keep_in_url()
present.page_style()
with st.sidebar:
    present.toggle()
    active_runs.sidebar_panel()
if present.presenting() and page.url_path not in ("train", "runs", "paper_check"):  # these show their runs
    active_runs.header_strip()
page.run()
