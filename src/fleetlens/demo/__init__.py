"""Demo scenarios: inject one anomaly into a running pipeline and watch its alert arrive."""
