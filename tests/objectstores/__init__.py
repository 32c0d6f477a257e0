"""Object-store tests: real S3, Azure Blob and GCS servers (servers.py), importable as ``objectstores``."""
