"""Video units: a still from the site's camera when an alert opens or escalates."""
