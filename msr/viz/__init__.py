"""Chart builders: pure functions returning Altair charts or matplotlib
Figures (built with ``matplotlib.figure.Figure``, never pyplot's global
state), so pages call them and tests check them without a browser."""
