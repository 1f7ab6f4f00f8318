"""engines polars layer."""
