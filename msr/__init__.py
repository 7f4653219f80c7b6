"""MSR Explorer's model package: Meta-learning Symmetries by Reparameterization on Rotated MNIST
and on the paper's synthetic problems. It never imports Streamlit."""
