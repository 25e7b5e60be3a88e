"""The model's chat template as untrusted code: read without running it, rendered only in a bounded sandbox."""
