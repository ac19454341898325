"""Meteorological geohazard risk warnings (气象风险预警) and what they set in motion."""
