"""Being written."""
import streamlit as st

st.title("errors")
