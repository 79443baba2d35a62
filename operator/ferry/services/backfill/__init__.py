"""The backfill services."""
