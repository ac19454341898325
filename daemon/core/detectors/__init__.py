"""Detector families. Each works on numpy arrays for all series a batch touched and returns
levels with the numbers behind them; none of them sends anything."""
