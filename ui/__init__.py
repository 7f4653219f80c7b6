"""Streamlit widgets shared by several pages. Only this folder, views/ and
app.py import streamlit; the msr package never does."""
