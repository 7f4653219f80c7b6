"""MSR Explorer: Streamlit entry point (navigation and shared settings).

Run with ``streamlit run app.py``. Every page lives in pages/ and only
composes functions of the msr package.
"""
import streamlit as st

st.set_page_config(page_title="MSR Explorer", page_icon="🔄", layout="wide")

PAGES = {
    "Explore": [
        st.Page("pages/home.py", title="Home", icon="🏠", default=True),
        st.Page("pages/train.py", title="Train", icon="🚀"),
        st.Page("pages/runs.py", title="Runs", icon="🗂️"),
    ],
    "Look inside": [
        st.Page("pages/data.py", title="Data", icon="🖼️"),
        st.Page("pages/errors.py", title="Errors", icon="❌"),
        st.Page("pages/weights.py", title="Weights", icon="🧮"),
    ],
    "Paper": [
        st.Page("pages/paper_check.py", title="Paper check", icon="📄"),
    ],
}

st.navigation(PAGES).run()
