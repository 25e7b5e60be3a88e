"""pytest-dfqs: certify GGUF models against the DFQS v1.0 specification."""

__version__ = "0.1.0"
