"""MSR Explorer's package: Meta-learning Symmetries by Reparameterization on Rotated MNIST and on the paper's
synthetic problems. It never imports Streamlit."""
__version__ = "0.2.0"
