"""Site warning levels: fusion of signals into four-level site warnings with hysteresis, the
signals from outside the series, and the reasons that explain a level."""
