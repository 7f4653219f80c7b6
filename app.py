"""MSR Explorer: Streamlit entry point (navigation and shared settings).

Run with ``streamlit run app.py``. Every page lives in views/ and only
composes functions of the msr package.
"""
import streamlit as st

st.set_page_config(page_title="MSR Explorer", page_icon="🔄", layout="wide")

PAGES = {
    "Explore": [
        st.Page("views/home.py", title="Home", icon="🏠", default=True),
        st.Page("views/train.py", title="Train", icon="🚀"),
        st.Page("views/runs.py", title="Runs", icon="🗂️"),
    ],
    "Look inside": [
        st.Page("views/data.py", title="Data", icon="🖼️"),
        st.Page("views/errors.py", title="Errors", icon="❌"),
        st.Page("views/weights.py", title="Weights", icon="🧮"),
    ],
    "Paper": [
        st.Page("views/paper_check.py", title="Paper check", icon="📄"),
    ],
}

st.navigation(PAGES).run()
