"""Being written."""
import streamlit as st

st.title("paper_check")
