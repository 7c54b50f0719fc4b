"""CNN Studio: entry point. Page config and navigation over the pages in `pages/`, nothing else."""
import streamlit as st

from pages._common import PAGES

st.set_page_config(page_title="CNN Studio", page_icon=":material/neurology:", layout="wide")

sections: dict[str, list] = {}
for info in PAGES:
    sections.setdefault(info.section, []).append(
        st.Page(info.path, title=info.title, icon=info.icon, default=info.path == "pages/home.py"))
st.navigation(sections).run()
