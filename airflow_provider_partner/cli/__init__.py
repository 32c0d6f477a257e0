"""Command-line tools of the provider (``partner-center-login``)."""
