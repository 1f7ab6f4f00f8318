"""logic layer."""
