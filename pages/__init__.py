"""Streamlit pages of CNN Studio (thin: widgets -> config -> core call -> render)."""
