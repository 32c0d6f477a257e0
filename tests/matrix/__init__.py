"""The support matrix: its definition, its constraints files and the runner (``make matrix``)."""
