"""The snapshot services."""
