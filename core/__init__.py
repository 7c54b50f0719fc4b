"""CNN Studio's engine: data sets, models, training, checkpoints and evaluation.

Everything here is plain PyTorch and NumPy. Nothing in this package imports streamlit: the pages in
`pages/` build config objects from widgets and call into this package, never the other way round.
"""
