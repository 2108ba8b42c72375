"""The model registry: names with numbered versions of fitted models, and aliases that
clients predict through while the model behind them changes."""
