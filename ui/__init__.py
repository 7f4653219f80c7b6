"""Streamlit widgets shared by several pages. Only this folder, pages/ and
app.py import streamlit; the msr package never does."""
