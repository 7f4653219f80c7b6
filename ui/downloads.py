"""The one download button every page uses.

A download must not rerun the page: a rerun replaces the files behind the
other buttons, so a second quick click would fetch a file already gone
(Streamlit logs MediaFileStorageError and the browser saves nothing).
"""
from __future__ import annotations

import streamlit as st


def download(label: str, data, file_name: str, mime: str, key: str | None = None, where=None, **kwargs) -> None:
    """A download button in ``where`` (the page by default); ``data`` may be
    bytes, text or a callable that makes them when clicked."""
    kwargs.setdefault("icon", ":material/download:")
    (where or st).download_button(label, data, file_name=file_name, mime=mime, key=key, on_click="ignore", **kwargs)
